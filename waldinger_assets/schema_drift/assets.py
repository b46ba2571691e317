"""Dagster glue for the schema drift gate: snapshot -> drift report -> checks that block what is downstream."""

import time
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from resources.alerts import AlertsResource
from resources.schema_drift import SchemaDriftSettings
from resources.warehouse import WarehouseResource
from waldinger_assets.schema_drift.alerting import alert_on_breaking_drift
from waldinger_assets.schema_drift.baseline import load_baseline
from waldinger_assets.schema_drift.metadata import take_snapshot
from waldinger_assets.schema_drift.report import build_report
from waldinger_assets.warehouse_retries import warehouse_retry_policy

SNAPSHOT_KEY = ["waldinger", "schema_drift", "schema_snapshot"]
DRIFT_REPORT_KEY = ["waldinger", "schema_drift", "drift_report"]
# Check names are constants so tests, sensors and jobs refer to the same name.
CONTRACT_CHECK = "contract_objects_have_no_breaking_drift"
WAREHOUSE_CHECK = "warehouse_matches_baseline"


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
) -> MaterializeResult:
    history = schema_drift.history()
    sql_memo = history.load_sql_cache()
    started = time.perf_counter()
    with warehouse.get_connection() as connection:
        snapshot = take_snapshot(connection, schema_drift.databases, view_sql_memo=sql_memo)
    seconds = time.perf_counter() - started
    path = history.save_snapshot(snapshot, context.run_id)
    history.save_sql_cache(sql_memo)
    counts = snapshot.count_by_type()
    context.log.info(f"snapshot of {len(snapshot.objects)} objects in {seconds:.2f}s ({snapshot.queries} queries)")
    return MaterializeResult(
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
    deps=[SNAPSHOT_KEY],
    group_name="schema_drift",
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"python"},
    description=(
        "Typed differences between this run's snapshot and the reviewed baseline, each with its severity. "
        "Breaking drift alerts the team; on a contract object it fails the blocking check."
    ),
)
def drift_report(
    context: AssetExecutionContext, schema_drift: SchemaDriftSettings, alerts: AlertsResource
) -> MaterializeResult:
    history = schema_drift.history()
    snapshot = history.snapshot_for_run(context.run_id) or history.latest_snapshot()
    if snapshot is None:
        raise RuntimeError(
            f"No schema snapshot in {history.directory}; materialize {'/'.join(SNAPSHOT_KEY)} first "
            "(the batch jobs do both in one run)."
        )
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
    report_json["alert"] = alert  # the drift alert sensor reads it: no second alert for the same failure
    path = history.save_report(report_json, context.run_id)
    counts = report.counts()
    return MaterializeResult(
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
        }
    )


def _report_for(context: AssetCheckExecutionContext, schema_drift: SchemaDriftSettings) -> dict:
    history = schema_drift.history()
    report = history.report_for_run(context.run.run_id) or history.latest_report()
    if report is None:
        raise RuntimeError(f"No drift report in {history.directory}; materialize {'/'.join(DRIFT_REPORT_KEY)} first.")
    return report


@asset_check(
    asset=DRIFT_REPORT_KEY,
    name=CONTRACT_CHECK,
    blocking=True,
    description="Fails (ERROR, blocking) when an object the pipeline depends on has unaccepted breaking drift.",
)
def contract_objects_have_no_breaking_drift(
    context: AssetCheckExecutionContext, schema_drift: SchemaDriftSettings
) -> AssetCheckResult:
    report = _report_for(context, schema_drift)
    contract = set(report["contract_objects"])
    breaking = [
        c
        for c in report["changes"]
        if c["severity"] == "breaking"
        and (c["object"] in contract or (c["change"] == "object_renamed" and c["before"] in contract))
    ]
    return AssetCheckResult(
        passed=not breaking,
        severity=AssetCheckSeverity.ERROR,
        description=(
            "No breaking drift on contract objects."
            if not breaking
            else "Breaking drift on contract objects: fix the warehouse, or accept it with `waldinger drift accept`."
        ),
        metadata={
            "contract_breaking": MetadataValue.int(len(breaking)),
            "baseline": MetadataValue.text(report["baseline"]),
            "changes": MetadataValue.json(breaking[:50]),
        },
    )


@asset_check(
    asset=DRIFT_REPORT_KEY,
    name=WAREHOUSE_CHECK,
    blocking=False,
    description="Warns when anything in the watched databases differs from the baseline (never blocks).",
)
def warehouse_matches_baseline(
    context: AssetCheckExecutionContext, schema_drift: SchemaDriftSettings
) -> AssetCheckResult:
    report = _report_for(context, schema_drift)
    summary = report["summary"]
    return AssetCheckResult(
        passed=summary["changes"] == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={key: MetadataValue.int(value) for key, value in summary.items()},
    )
