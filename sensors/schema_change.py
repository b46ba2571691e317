"""Schema change sensor: a cheap fingerprint of the watched databases (one aggregate query per database) and
of the baseline; when either changes, one run of the schema_drift job (snapshot + drift report + checks).

The baseline is part of the state because accepting drift changes what the gate decides: the run after
`waldinger drift accept` re-opens the gate without anyone starting it by hand.
"""

from pathlib import Path

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from resources import environment
from resources.schema_drift import SchemaDriftSettings
from resources.warehouse import WarehouseResource
from sensors.cursors import TRIGGER_TAG, dump_cursor, load_cursor, next_sequence
from waldinger_assets.schema_drift.fingerprint import baseline_fingerprint, database_fingerprints
from waldinger_assets.schema_drift.jobs import schema_drift_job

SCHEMA_CHANGE_SENSOR = "schema_change_sensor"


def what_changed(previous: dict | None, databases: dict[str, str], baseline: str) -> list[str]:
    """Names of what changed since the cursor: databases, and "baseline"; ["first tick"] without a cursor."""
    if previous is None:
        return ["first tick"]
    seen = previous.get("databases", {})
    changed = sorted(name for name in set(seen) | set(databases) if seen.get(name) != databases.get(name))
    if previous.get("baseline") != baseline:
        changed.append("baseline")
    return changed


@sensor(
    name=SCHEMA_CHANGE_SENSOR,
    job=schema_drift_job,
    minimum_interval_seconds=environment.sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Fingerprints the watched databases (one metadata query each) and the schema baseline; when one "
        "changes, runs the schema_drift job so the drift report and its blocking check reflect it."
    ),
)
def schema_change_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource, schema_drift: SchemaDriftSettings
) -> SensorResult:
    with warehouse.get_connection() as connection:
        databases = database_fingerprints(connection, list(schema_drift.databases))
    baseline = baseline_fingerprint(Path(schema_drift.baseline_path))
    previous = load_cursor(context.cursor)
    changed = what_changed(previous, databases, baseline)
    if not changed:
        return SensorResult(skip_reason=f"No change in {', '.join(databases)} or the baseline.")
    sequence = next_sequence(previous)
    request = RunRequest(
        run_key=f"schema-{sequence}",
        tags={TRIGGER_TAG: SCHEMA_CHANGE_SENSOR, "waldinger/changed": ",".join(changed)[:200]},
    )
    context.log.info(f"Schema state changed ({', '.join(changed)}): requesting a drift run")
    return SensorResult(
        run_requests=[request],
        cursor=dump_cursor({"sequence": sequence, "databases": databases, "baseline": baseline}),
    )
