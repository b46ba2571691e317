"""Typed differences between the baseline and a snapshot, with their severity. Pure.

Objects whose content hash is unchanged are skipped without looking at their columns, which is what keeps a
diff of 100,000 objects fast. Renames are recognised, not reported as a drop plus an add:
- a column dropped and one added in the same object, with the same type and the same position;
- an object dropped and one added in the same database, of the same type with identical columns (and, for
  views, the same query).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from waldinger_assets.schema_drift.classify import (
    BREAKING,
    COSMETIC,
    NON_BREAKING,
    column_added_severity,
    nullability_change_severity,
    type_change_severity,
)
from waldinger_assets.schema_drift.schema_objects import ColumnDefinition, ObjectDefinition, Snapshot

CHANGE_KINDS = (
    "object_added",
    "object_dropped",
    "object_renamed",
    "column_added",
    "column_dropped",
    "column_renamed",
    "type_changed",
    "nullability_changed",
    "default_changed",
    "position_changed",
    "view_definition_changed",
    "comment_changed",
)


@dataclass(frozen=True)
class Change:
    object: str  # DB.SCHEMA.NAME as stored; for a rename, the new name
    object_type: str
    change: str
    column: str | None
    before: object
    after: object
    severity: str

    def to_json(self) -> dict:
        return {
            "object": self.object,
            "object_type": self.object_type,
            "change": self.change,
            "column": self.column,
            "before": self.before,
            "after": self.after,
            "severity": self.severity,
        }


def diff_snapshots(baseline: Snapshot, current: Snapshot) -> list[Change]:
    """Every change from `baseline` to `current`, in a stable order (by object, then column)."""
    changes: list[Change] = []
    dropped = [obj for key, obj in baseline.objects.items() if key not in current.objects]
    added = [obj for key, obj in current.objects.items() if key not in baseline.objects]
    renamed = _match_renamed_objects(dropped, added)
    renamed_old = {old.key for old, _ in renamed}
    renamed_new = {new.key for _, new in renamed}

    for key, before in baseline.objects.items():
        after = current.objects.get(key)
        if after is not None and after.content_hash != before.content_hash:
            changes.extend(diff_object(before, after))
    for old, new in renamed:
        changes.append(
            Change(new.full_name, new.object_type, "object_renamed", None, old.full_name, new.full_name, BREAKING)
        )
        changes.extend(diff_object(old, new))
    for obj in dropped:
        if obj.key not in renamed_old:
            changes.append(
                Change(obj.full_name, obj.object_type, "object_dropped", None, obj.full_name, None, BREAKING)
            )
    for obj in added:
        if obj.key not in renamed_new:
            changes.append(
                Change(obj.full_name, obj.object_type, "object_added", None, None, obj.full_name, NON_BREAKING)
            )
    return sorted(changes, key=lambda c: (c.object, c.column or "", CHANGE_KINDS.index(c.change)))


def _match_renamed_objects(
    dropped: list[ObjectDefinition], added: list[ObjectDefinition]
) -> list[tuple[ObjectDefinition, ObjectDefinition]]:
    """Pairs (old, new) of objects that were renamed. Candidates must share database, type and columns;
    among several, the one in the same schema wins, then name order, so the result is deterministic."""
    candidates: dict[tuple[str, str, str], list[ObjectDefinition]] = defaultdict(list)
    for obj in sorted(added, key=lambda o: o.key):
        if obj.columns:  # databases, schemas and column-less objects are matched by name only
            candidates[(obj.database, obj.object_type, obj.columns_hash)].append(obj)
    pairs = []
    for old in sorted(dropped, key=lambda o: o.key):
        pool = candidates.get((old.database, old.object_type, old.columns_hash))
        if not pool or not old.columns:
            continue
        new = next((o for o in pool if o.schema == old.schema), pool[0])
        pool.remove(new)
        pairs.append((old, new))
    return pairs


def diff_object(before: ObjectDefinition, after: ObjectDefinition) -> list[Change]:
    """Changes inside one object (same object, possibly under a new name)."""
    name, object_type = after.full_name, after.object_type
    changes: list[Change] = []
    if before.object_type != after.object_type:
        changes.append(Change(name, object_type, "type_changed", None, before.object_type, after.object_type, BREAKING))
    if before.comment != after.comment:
        changes.append(Change(name, object_type, "comment_changed", None, before.comment, after.comment, COSMETIC))
    if before.definition != after.definition and (before.definition or after.definition):
        # The columns a view exposes are compared on their own; a new query with the same columns is
        # a change in meaning that readers should know about, not one that breaks them.
        changes.append(
            Change(
                name, object_type, "view_definition_changed", None, before.definition, after.definition, NON_BREAKING
            )
        )
    changes.extend(_diff_columns(name, object_type, before.columns, after.columns))
    return changes


def _diff_columns(
    name: str, object_type: str, before: tuple[ColumnDefinition, ...], after: tuple[ColumnDefinition, ...]
) -> list[Change]:
    old = {c.name: c for c in before}
    new = {c.name: c for c in after}
    dropped = [c for c in before if c.name not in new]
    added = [c for c in after if c.name not in old]
    changes: list[Change] = []

    renamed: list[tuple[ColumnDefinition, ColumnDefinition]] = []
    for column in dropped:
        match = next(
            (c for c in added if c.data_type == column.data_type and c.position == column.position),
            None,
        )
        if match is not None:
            added.remove(match)
            renamed.append((column, match))
    renamed_old = {o.name for o, _ in renamed}
    for column in dropped:
        if column.name not in renamed_old:
            changes.append(Change(name, object_type, "column_dropped", column.name, column.to_json(), None, BREAKING))
    for column in added:
        severity = column_added_severity(column.nullable, column.default)
        changes.append(Change(name, object_type, "column_added", column.name, None, column.to_json(), severity))

    pairs = [(old[n], new[n]) for n in old if n in new] + renamed
    for was, now in pairs:
        if was.name != now.name:
            changes.append(Change(name, object_type, "column_renamed", now.name, was.name, now.name, BREAKING))
        if was.data_type != now.data_type:
            severity = type_change_severity(was.data_type, now.data_type)
            changes.append(Change(name, object_type, "type_changed", now.name, was.data_type, now.data_type, severity))
        if was.nullable != now.nullable:
            severity = nullability_change_severity(was.nullable, now.nullable)
            changes.append(
                Change(name, object_type, "nullability_changed", now.name, was.nullable, now.nullable, severity)
            )
        if was.default != now.default:
            changes.append(
                Change(name, object_type, "default_changed", now.name, was.default, now.default, NON_BREAKING)
            )
        if was.comment != now.comment:
            changes.append(Change(name, object_type, "comment_changed", now.name, was.comment, now.comment, COSMETIC))
    changes.extend(_position_changes(name, object_type, pairs))
    return changes


def _position_changes(
    name: str, object_type: str, pairs: list[tuple[ColumnDefinition, ColumnDefinition]]
) -> list[Change]:
    """Columns whose order relative to the other surviving columns changed. Columns that only shifted
    because another column was added or dropped before them are not reported."""
    old_order = [now.name for _, now in sorted(pairs, key=lambda p: p[0].position)]
    new_order = [now.name for _, now in sorted(pairs, key=lambda p: p[1].position)]
    if old_order == new_order:
        return []
    keep = _longest_common_subsequence(old_order, new_order)
    by_name = {now.name: (was, now) for was, now in pairs}
    return [
        Change(
            name,
            object_type,
            "position_changed",
            column,
            by_name[column][0].position,
            by_name[column][1].position,
            NON_BREAKING,
        )
        for column in new_order
        if column not in keep
    ]


def _longest_common_subsequence(first: list[str], second: list[str]) -> set[str]:
    lengths = [[0] * (len(second) + 1) for _ in range(len(first) + 1)]
    for i, a in enumerate(first):
        for j, b in enumerate(second):
            lengths[i + 1][j + 1] = lengths[i][j] + 1 if a == b else max(lengths[i][j + 1], lengths[i + 1][j])
    keep: set[str] = set()
    i, j = len(first), len(second)
    while i and j:
        if first[i - 1] == second[j - 1]:
            keep.add(first[i - 1])
            i, j = i - 1, j - 1
        elif lengths[i - 1][j] >= lengths[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return keep


def summarize(changes: list[Change]) -> dict[str, int]:
    counts = {"changes": len(changes), BREAKING: 0, NON_BREAKING: 0, COSMETIC: 0}
    for change in changes:
        counts[change.severity] += 1
    return counts
