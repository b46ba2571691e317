"""The baseline: the expected definitions, as a reviewable JSON file in the repo (stable order, one column per
line, so accepting drift reads as a small diff in a pull request)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from waldinger_assets.schema_drift.schema_objects import Snapshot, SnapshotFormatError

# `waldinger drift accept` reads the old baseline too, so an unreadable one has to go before it can be re-recorded.
_RE_RECORD = (
    "or delete the file and re-record the baseline from the current state with `waldinger drift accept` "
    "(that accepts every pending change)"
)


class BaselineError(ValueError):
    """The baseline file exists but cannot be used; the message names the file and what to do."""


def load_baseline(path: Path) -> Snapshot | None:
    """The baseline, or None when there is none yet. Every field is checked: a hand-edited "nullable": "false"
    is an error, not a true."""
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
    except ValueError as error:  # not JSON, or not UTF-8
        raise BaselineError(
            f"The schema baseline {path} is not valid JSON ({error}). Restore it from git, {_RE_RECORD}."
        ) from error
    try:
        return Snapshot.from_json(document)
    except SnapshotFormatError as error:
        raise BaselineError(
            f"The schema baseline {path} is not a valid baseline: {error}. Fix it in the file (or restore the file "
            f"from git), {_RE_RECORD}."
        ) from error


def accept(
    current: Snapshot,
    previous: Snapshot | None,
    databases: Iterable[str] | None = None,
    objects: Iterable[str] | None = None,
) -> Snapshot:
    """A new baseline: `current` for what was selected, `previous` for everything else.

    `databases` selects whole databases; `objects` selects objects by full name (DB.SCHEMA.NAME as stored),
    so accepting one table's change leaves every other pending change pending. With no selection, all of
    `current` is accepted.
    """
    databases = set(databases or ())
    objects = set(objects or ())

    def is_selected(obj) -> bool:
        if not databases and not objects:
            return obj.database in current.databases
        return obj.database in databases or obj.full_name in objects

    kept = {k: o for k, o in (previous.objects if previous else {}).items() if not is_selected(o)}
    selected = {k: o for k, o in current.objects.items() if is_selected(o)}
    merged_databases = tuple(dict.fromkeys((*(previous.databases if previous else ()), *current.databases)))
    return Snapshot(databases=merged_databases, objects={**kept, **selected}, taken_at=current.taken_at)


def write_baseline(path: Path, baseline: Snapshot) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(baseline.to_text())
    os.replace(temporary, path)
