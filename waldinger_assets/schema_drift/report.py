"""The drift report: the JSON contract of `waldinger drift report --json`, the Markdown shown in the UI, and
which changes touch the pipeline's contract objects. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from waldinger_assets.schema_drift.classify import BREAKING, COSMETIC, NON_BREAKING
from waldinger_assets.schema_drift.diff import Change, diff_snapshots
from waldinger_assets.schema_drift.schema_objects import Snapshot

MARKDOWN_ROW_LIMIT = 200


@dataclass(frozen=True)
class DriftReport:
    objects: int
    changes: tuple[Change, ...]
    baseline_present: bool
    contract_objects: tuple[str, ...] = ()

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.severity == BREAKING)

    @property
    def contract_breaking(self) -> tuple[Change, ...]:
        contract = set(self.contract_objects)
        return tuple(c for c in self.breaking if touches(c, contract))

    def counts(self) -> dict[str, int]:
        counts = {"changes": len(self.changes), BREAKING: 0, NON_BREAKING: 0, COSMETIC: 0}
        for change in self.changes:
            counts[change.severity] += 1
        counts["contract_breaking"] = len(self.contract_breaking)
        return counts

    def to_json(self) -> dict:
        """The contract shape (../shared/DESIGN.md): {"objects": int, "changes": [...]}, plus context."""
        return {
            "objects": self.objects,
            "changes": [c.to_json() for c in self.changes],
            "baseline": "present" if self.baseline_present else "missing",
            "summary": self.counts(),
            "contract_objects": list(self.contract_objects),
        }

    def markdown(self, limit: int = MARKDOWN_ROW_LIMIT) -> str:
        if not self.baseline_present:
            return "No baseline yet: nothing to compare with. Run `waldinger drift accept` to record one."
        if not self.changes:
            return f"No drift: all {self.objects} objects match the baseline."
        contract = set(self.contract_objects)
        ordered = sorted(self.changes, key=lambda c: (_SEVERITY_ORDER[c.severity], c.object, c.column or ""))
        lines = [
            "| severity | object | type | change | column | before | after |",
            "|---|---|---|---|---|---|---|",
        ]
        for change in ordered[:limit]:
            marker = " (contract)" if touches(change, contract) else ""
            lines.append(
                f"| {change.severity}{marker} | {_cell(change.object)} | {change.object_type} | {change.change} | "
                f"{_cell(change.column)} | {_cell(_brief(change.before))} | {_cell(_brief(change.after))} |"
            )
        if len(ordered) > limit:
            lines.append(f"\n… and {len(ordered) - limit} more; `waldinger drift report --json` lists them all.")
        return "\n".join(lines)


_SEVERITY_ORDER = {BREAKING: 0, NON_BREAKING: 1, COSMETIC: 2}


def touches(change: Change, contract: set[str]) -> bool:
    """True if the change is on a contract object (for a rename: under its old or its new name)."""
    return change.object in contract or (change.change == "object_renamed" and change.before in contract)


def _brief(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):  # a whole column (added or dropped)
        return f"{value.get('type')}{'' if value.get('nullable', True) else ' NOT NULL'}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def build_report(baseline: Snapshot | None, current: Snapshot, contract_objects: Iterable[str] = ()) -> DriftReport:
    if baseline is None:
        return DriftReport(len(current.objects), (), baseline_present=False, contract_objects=tuple(contract_objects))
    # A database the baseline has but this snapshot left out (--databases) is not "dropped".
    changes = diff_snapshots(baseline.restricted_to(current.databases), current)
    return DriftReport(
        objects=len(current.objects),
        changes=tuple(changes),
        baseline_present=True,
        contract_objects=tuple(contract_objects),
    )
