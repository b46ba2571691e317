"""The alert for breaking drift: what it says, and sending it once per distinct set of breaking changes (a
pipeline that runs hourly against unaccepted drift alerts once, not every hour)."""

from __future__ import annotations

import hashlib
import json

from resources.schema_history import SchemaHistory, SentAlert
from waldinger_assets.schema_drift.gate import blocking_changes
from waldinger_assets.schema_drift.report import DriftReport, touches

SENT_TO, ALREADY_ALERTED = "sent to", "already alerted for these changes"
ALERT_LINES = 15


def breaking_fingerprint(report: DriftReport) -> str:
    changes = sorted(json.dumps(c.to_json(), sort_keys=True, default=str) for c in report.breaking)
    return hashlib.sha256("\n".join(changes).encode()).hexdigest()


def alert_text(report: DriftReport) -> tuple[str, str]:
    contract = set(report.contract_objects)
    blocking = blocking_changes(report)
    title = (
        f"Schema drift blocks the pipeline: {len(blocking)} breaking change(s) on contract objects"
        if blocking
        else f"Breaking schema drift: {len(report.breaking)} change(s) outside the pipeline's contract"
    )
    lines = []
    for change in sorted(report.breaking, key=lambda c: (not touches(c, contract), c.object, c.column or ""))[
        :ALERT_LINES
    ]:
        column = f" column {change.column}" if change.column else ""
        marker = " [contract]" if touches(change, contract) else ""
        lines.append(f"- {change.change}: {change.object}{column}{marker}")
    if len(report.breaking) > ALERT_LINES:
        lines.append(f"- … and {len(report.breaking) - ALERT_LINES} more")
    lines.append("Accept intended changes with `waldinger drift accept`; otherwise fix the warehouse.")
    return title, "\n".join(lines)


def alert_on_breaking_drift(report: DriftReport, history: SchemaHistory, alerts, run_link: str) -> str:
    """Sends the alert if this set of breaking changes was not alerted before; returns what happened."""
    if not report.breaking:
        history.record_alert(None)
        return "no breaking drift"
    fingerprint = breaking_fingerprint(report)
    last = history.last_alert()
    if last is not None and last.fingerprint == fingerprint:
        return ALREADY_ALERTED
    title, text = alert_text(report)
    delivery = alerts.send(title, text, link=run_link, kind="schema_drift")
    history.record_alert(SentAlert(fingerprint=fingerprint, run_link=run_link))
    return f"{SENT_TO} {delivery.delivered_to}"


def report_alerted(alert_outcome: str | None) -> bool:
    """Whether the drift report of a run sent (or had already sent) the alert for its breaking drift."""
    return (alert_outcome or "").startswith((SENT_TO, ALREADY_ALERTED))


def check_failure_alert(blocking: list[dict] | None, run_id: str, total: int | None = None) -> tuple[str, str]:
    """Title and text for a contract check that failed, or could not run (`blocking` None), without the report
    alerting. `blocking` is the check's own list of the changes that closed the gate (the first of `total`)."""
    if blocking is None:
        return (
            "Schema drift gate could not decide: the drift check did not complete",
            f"Run {run_id} ended before the contract check could read a drift report, so the daily batch is "
            "not running. Open the run to see why (the warehouse may be unreachable), then re-execute it.",
        )
    lines = [
        f"- {change['change']}: {change['object']}" + (f" column {change['column']}" if change.get("column") else "")
        for change in blocking[:ALERT_LINES]
    ]
    total = max(total or 0, len(blocking))
    if total > ALERT_LINES:
        lines.append(f"- … and {total - ALERT_LINES} more")
    lines.append("Accept intended changes with `waldinger drift accept`; otherwise fix the warehouse.")
    return f"Schema drift blocks the pipeline: {total} breaking change(s) on contract objects", "\n".join(lines)
