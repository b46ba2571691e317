"""Dagster glue for the schema drift gate: snapshot -> drift report -> checks that block what is downstream.

The snapshot and the report pass from asset to asset as values (Dagster's IO manager, keyed by the run that
produced them); the schema history keeps a readable copy of each.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from resources.alerts import AlertsResource
from resources.schema_drift import SchemaDriftSettings
from resources.schema_history import REPORT, SNAPSHOT, HistoryDocument
from resources.warehouse import WarehouseResource
from waldinger_assets.schema_drift.alerting import alert_on_breaking_drift
from waldinger_assets.schema_drift.baseline import load_baseline
from waldinger_assets.schema_drift.gate import blocking_changes
from waldinger_assets.schema_drift.metadata import take_snapshot
from waldinger_assets.schema_drift.names import CONTRACT_CHECK, DRIFT_REPORT_KEY, SNAPSHOT_KEY, WAREHOUSE_CHECK
from waldinger_assets.schema_drift.report import DriftReport, build_report
from waldinger_assets.schema_drift.schema_objects import Snapshot
from waldinger_assets.warehouse_retries import warehouse_retry_policy

__all__ = ["CONTRACT_CHECK", "DRIFT_REPORT_KEY", "SNAPSHOT_KEY", "WAREHOUSE_CHECK"]


@dataclass(frozen=True)
class RecordedReport:
    """The drift report asset's value: the report, the baseline it was computed against, and what its alert did."""

    report: DriftReport
    baseline_path: str
    alert: str


@asset(
    key=SNAPSHOT_KEY,
    group_name="schema_drift",
    backfill_policy=BackfillPolicy.single_run(),  # runs once in a backfill of the daily batch (the gate)
    retry_policy=warehouse_retry_policy(),
    kinds={"snowflake", "python"},
    description=(
        "The canonical definition of every database, schema, table, view and column in the configured databases, "
        "read with a fixed number of INFORMATION_SCHEMA queries per database. Every run's snapshot is kept."
    ),
)
def schema_snapshot(
    context: AssetExecutionContext, warehouse: WarehouseResource, schema_drift: SchemaDriftSettings
) -> Output[Snapshot]:
    history = schema_drift.history()
    sql_memo = history.load_sql_cache()
    started = time.perf_counter()
    with warehouse.get_connection() as connection:
        snapshot = take_snapshot(connection, schema_drift.databases, view_sql_memo=sql_memo)
    seconds = time.perf_counter() - started
    path = history.record(HistoryDocument(context.run_id, SNAPSHOT, snapshot.to_text()))
    history.save_sql_cache(sql_memo)
    counts = snapshot.count_by_type()
    context.log.info(f"snapshot of {len(snapshot.objects)} objects in {seconds:.2f}s ({snapshot.queries} queries)")
    return Output(
        snapshot,
        metadata={
            "objects": MetadataValue.int(len(snapshot.objects)),
            "tables": MetadataValue.int(counts.get("TABLE", 0)),
            "views": MetadataValue.int(counts.get("VIEW", 0)),
            "schemas": MetadataValue.int(counts.get("SCHEMA", 0)),
            "columns": MetadataValue.int(snapshot.column_count),
            "metadata_queries": MetadataValue.int(snapshot.queries),
            "seconds": MetadataValue.float(round(seconds, 3)),
            "databases": MetadataValue.text(", ".join(snapshot.databases)),
            "content_hash": MetadataValue.text(snapshot.content_hash),
            "snapshot_file": MetadataValue.path(str(path)),
        },
    )


@asset(
    key=DRIFT_REPORT_KEY,
    ins={"snapshot": AssetIn(key=SNAPSHOT_KEY)},
    group_name="schema_drift",
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"python"},
    description=(
        "Typed differences between this run's snapshot and the reviewed baseline, each with its severity. "
        "Breaking drift alerts the team; on a contract object it fails the blocking check."
    ),
)
def drift_report(
    context: AssetExecutionContext, snapshot: Snapshot, schema_drift: SchemaDriftSettings, alerts: AlertsResource
) -> Output[RecordedReport]:
    history = schema_drift.history()
    baseline_path = Path(schema_drift.baseline_path)
    report = build_report(load_baseline(baseline_path), snapshot, schema_drift.contract_objects)
    report_json = report.to_json()
    report_json["baseline_path"] = str(baseline_path)
    report_json["run_id"] = context.run_id
    if not report.baseline_present:
        context.log.warning(
            f"No baseline at {baseline_path}: nothing blocks. Record one with `waldinger drift accept`."
        )
    run_link = f"{schema_drift.dagster_ui_url}/runs/{context.run_id}"
    alert = alert_on_breaking_drift(report, history, alerts, run_link)
    report_json["alert"] = alert
    path = history.record(
        HistoryDocument(context.run_id, REPORT, json.dumps(report_json, indent=1, ensure_ascii=False))
    )
    counts = report.counts()
    return Output(
        RecordedReport(report=report, baseline_path=str(baseline_path), alert=alert),
        metadata={
            "changes": MetadataValue.int(counts["changes"]),
            "breaking": MetadataValue.int(counts["breaking"]),
            "non_breaking": MetadataValue.int(counts["non_breaking"]),
            "cosmetic": MetadataValue.int(counts["cosmetic"]),
            "contract_breaking": MetadataValue.int(counts["contract_breaking"]),
            "objects": MetadataValue.int(report.objects),
            "baseline": MetadataValue.text("present" if report.baseline_present else f"missing ({baseline_path})"),
            "drift": MetadataValue.md(report.markdown()),
            "alert": MetadataValue.text(alert),
            "report_file": MetadataValue.path(str(path)),
        },
    )


@asset_check(
    asset=DRIFT_REPORT_KEY,
    name=CONTRACT_CHECK,
    blocking=True,
    description="Fails (ERROR, blocking) when an object the pipeline depends on has unaccepted breaking drift.",
)
def contract_objects_have_no_breaking_drift(drift_report: RecordedReport) -> AssetCheckResult:
    blocking = [change.to_json() for change in blocking_changes(drift_report.report)]
    return AssetCheckResult(
        passed=not blocking,
        severity=AssetCheckSeverity.ERROR,
        description=(
            "No breaking drift on contract objects."
            if not blocking
            else "Breaking drift on contract objects: fix the warehouse, or accept it with `waldinger drift accept`."
        ),
        metadata={
            "contract_breaking": MetadataValue.int(len(blocking)),
            "baseline": MetadataValue.text("present" if drift_report.report.baseline_present else "missing"),
            # The drift alert sensor reads these two: what to say, and whether the report already said it.
            "changes": MetadataValue.json(blocking[:50]),
            "alert": MetadataValue.text(drift_report.alert),
        },
    )


@asset_check(
    asset=DRIFT_REPORT_KEY,
    name=WAREHOUSE_CHECK,
    blocking=False,
    description="Warns when anything in the watched databases differs from the baseline (never blocks).",
)
def warehouse_matches_baseline(drift_report: RecordedReport) -> AssetCheckResult:
    summary = drift_report.report.counts()
    return AssetCheckResult(
        passed=summary["changes"] == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={key: MetadataValue.int(value) for key, value in summary.items()},
    )
