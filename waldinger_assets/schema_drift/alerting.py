"""The alert for breaking drift: what it says, and sending it once per distinct set of breaking changes (a
pipeline that runs hourly against unaccepted drift alerts once, not every hour)."""

from __future__ import annotations

import hashlib
import json

from waldinger_assets.schema_drift.report import DriftReport, touches

ALERT_STATE = "last_drift_alert"
ALERT_LINES = 15


def breaking_fingerprint(report: DriftReport) -> str:
    changes = sorted(json.dumps(c.to_json(), sort_keys=True, default=str) for c in report.breaking)
    return hashlib.sha256("\n".join(changes).encode()).hexdigest()


def alert_text(report: DriftReport) -> tuple[str, str]:
    contract = set(report.contract_objects)
    blocking = report.contract_breaking
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


def alert_on_breaking_drift(report: DriftReport, history, alerts, run_link: str) -> str:
    """Sends the alert if this set of breaking changes was not alerted before; returns what happened."""
    if not report.breaking:
        history.write_state(ALERT_STATE, {})
        return "no breaking drift"
    fingerprint = breaking_fingerprint(report)
    if history.read_state(ALERT_STATE).get("fingerprint") == fingerprint:
        return "already alerted for these changes"
    title, text = alert_text(report)
    delivery = alerts.send(title, text, link=run_link, kind="schema_drift")
    history.write_state(ALERT_STATE, {"fingerprint": fingerprint, "run_link": run_link})
    return f"sent to {delivery.delivered_to}"


def report_alerted(report_json: dict | None) -> bool:
    """Whether the drift report of a run sent (or had already sent) the alert for its breaking drift."""
    alert = (report_json or {}).get("alert", "")
    return alert.startswith(("sent to", "already alerted"))


def check_failure_alert(report_json: dict | None, run_id: str) -> tuple[str, str]:
    """Title and text for a contract check that failed, or could not run, without the report alerting."""
    if report_json is None:
        return (
            "Schema drift gate could not decide: the drift check did not complete",
            f"Run {run_id} ended before the contract check could read a drift report, so the daily batch is "
            "not running. Open the run to see why (the warehouse may be unreachable), then re-execute it.",
        )
    contract = set(report_json.get("contract_objects", []))
    blocking = [
        change
        for change in report_json.get("changes", [])
        if change.get("severity") == "breaking"
        and (change.get("object") in contract or change.get("before") in contract)
    ]
    lines = [
        f"- {change['change']}: {change['object']}" + (f" column {change['column']}" if change.get("column") else "")
        for change in blocking[:ALERT_LINES]
    ]
    if len(blocking) > ALERT_LINES:
        lines.append(f"- … and {len(blocking) - ALERT_LINES} more")
    lines.append("Accept intended changes with `waldinger drift accept`; otherwise fix the warehouse.")
    return f"Schema drift blocks the pipeline: {len(blocking)} breaking change(s) on contract objects", "\n".join(lines)
