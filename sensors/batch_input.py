"""Batch input sensor: new or changed input rows for a day -> that day's partition of the daily_batch job
(drift gate, batch deployment, validated input, batch outputs, in one run).

One aggregate query per tick (rows and a hash sum per PROMPT_DATE) finds what changed since the cursor. The
gate is respected across runs: while the latest contract check has failed, changed days are held in the
cursor instead of requested, and a requested run that the gate stopped puts its day back on hold; held days
are requested as soon as the check passes again (e.g. after `waldinger drift accept`). Nothing is missed and
nothing runs twice for the same change.

The first tick only records what is there: past days are the backfill's job (README, "Backfills").
"""

import datetime as dt

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from resources import environment
from resources.dagster_internals import RUN_KEY_TAG
from resources.warehouse import WarehouseResource
from sensors.cursors import TRIGGER_TAG, dump_cursor, load_cursor, next_sequence
from waldinger_assets.batch.input_changes import changed_days, input_fingerprints
from waldinger_assets.batch.jobs import daily_batch_job
from waldinger_assets.batch.partitions import daily_partitions
from waldinger_assets.schema_drift.gate import check_failed_in_run, drift_gate_state

BATCH_INPUT_SENSOR = "batch_input_sensor"
# A request whose run never appears (the daemon refused it) is forgotten after this long.
UNLAUNCHED_REQUEST_TTL_S = 3600


def settle_requests(instance: DagsterInstance, requested: dict, now: float) -> tuple[dict, dict, list[str]]:
    """Splits the days requested earlier into (still open, held again because the gate stopped their run),
    and notes on those that ended otherwise."""
    still_open, held, notes = {}, {}, []
    for day, request in requested.items():
        runs = instance.get_runs(RunsFilter(tags={RUN_KEY_TAG: request["run_key"]}), limit=1)
        if not runs:
            if now - request["at"] < UNLAUNCHED_REQUEST_TTL_S:
                still_open[day] = request
            continue
        run = runs[0]
        if not run.is_finished:
            still_open[day] = request
        elif run.status != DagsterRunStatus.SUCCESS and check_failed_in_run(instance, run.run_id):
            held[day] = request["fingerprint"]
        elif run.status != DagsterRunStatus.SUCCESS:
            notes.append(f"{day}: run {run.run_id} failed (not the drift gate); re-execute it from the UI")
    return still_open, held, notes


@sensor(
    name=BATCH_INPUT_SENSOR,
    job=daily_batch_job,
    minimum_interval_seconds=environment.sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Requests the daily_batch partition of each day whose input rows are new or changed; holds days while "
        "the blocking drift check is failing and requests them once it passes."
    ),
)
def batch_input_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
    first_day = dt.date.fromisoformat(daily_partitions.get_first_partition_key())
    last_day = dt.date.fromisoformat(daily_partitions.get_last_partition_key())
    with warehouse.get_connection() as connection:
        current = input_fingerprints(connection, first_day, last_day)
    previous = load_cursor(context.cursor)
    if previous is None:
        return SensorResult(
            skip_reason=f"First tick: recorded {len(current)} day(s) of input; backfill past days if needed.",
            cursor=dump_cursor({"sequence": 0, "seen": current, "held": {}, "requested": {}}),
        )
    now = dt.datetime.now(dt.UTC).timestamp()
    changed = changed_days(previous["seen"], current)
    seen = {**previous["seen"], **changed}
    still_open, held_again, notes = settle_requests(context.instance, previous["requested"], now)
    for note in notes:
        context.log.warning(note)
    pending = dict(sorted({**previous["held"], **held_again, **changed}.items()))
    if not pending:
        return SensorResult(
            skip_reason="No new or changed input rows.",
            cursor=dump_cursor({**previous, "seen": seen, "requested": still_open}),
        )
    gate = drift_gate_state(context.instance)
    if gate.closed:
        return SensorResult(
            skip_reason=(
                f"Holding {len(pending)} day(s) ({', '.join(pending)}): {gate.describe()}. They run once the "
                "drift is fixed or accepted and the check passes."
            ),
            cursor=dump_cursor({**previous, "seen": seen, "held": pending, "requested": still_open}),
        )
    # A day whose run is still going waits for it: two runs of one day could commit in the wrong order.
    waiting = {day: fingerprint for day, fingerprint in pending.items() if day in still_open}
    ready = {day: fingerprint for day, fingerprint in pending.items() if day not in still_open}
    if not ready:
        return SensorResult(
            skip_reason=f"Day(s) {', '.join(waiting)} changed again; waiting for their runs to finish.",
            cursor=dump_cursor({**previous, "seen": seen, "held": waiting, "requested": still_open}),
        )
    sequence = next_sequence(previous)
    requests, requested = [], dict(still_open)
    for day, fingerprint in ready.items():
        run_key = f"batch-{day}-{sequence}"
        requests.append(
            RunRequest(
                run_key=run_key,
                partition_key=day,
                tags={TRIGGER_TAG: BATCH_INPUT_SENSOR, "waldinger/input_fingerprint": fingerprint},
            )
        )
        requested[day] = {"run_key": run_key, "fingerprint": fingerprint, "at": now}
    context.log.info(f"Requesting the daily batch for {', '.join(ready)}")
    return SensorResult(
        run_requests=requests,
        cursor=dump_cursor({"sequence": sequence, "seen": seen, "held": waiting, "requested": requested}),
    )
