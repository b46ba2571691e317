"""Dagster glue for the batch domain: the input table, each day's validated batch input, and each day's batch
outputs in Snowflake.

Both partitioned assets take a whole partition range in one run (BackfillPolicy.single_run), so
`dagster asset materialize --partition-range` and UI backfills load the model once for the range.
"""

import datetime as dt
import hashlib
import json
import time

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from resources import environment
from resources.batch_files import BatchFilesResource
from resources.serving import BatchComputeResource
from resources.snowflake_sql import qualified_name
from resources.warehouse import WarehouseResource
from waldinger_assets.batch.output_table import BATCH_OUTPUT_TABLE
from waldinger_assets.batch.partitions import daily_partitions
from waldinger_assets.batch.validation import validate_prompts, validation_counts
from waldinger_assets.demo_warehouse.catalog import BATCH_INPUT_TABLE
from waldinger_assets.schema_drift.assets import DRIFT_REPORT_KEY
from waldinger_assets.serving.assets import BATCH_DEPLOYMENT_KEY
from waldinger_assets.warehouse_retries import warehouse_retry_policy

BATCH_INPUT_KEY = ["waldinger", "batch", "batch_input"]
BATCH_OUTPUTS_KEY = list(BATCH_OUTPUT_TABLE)

batch_input_table = AssetSpec(
    key=list(BATCH_INPUT_TABLE),
    description=(
        "Prompts for the daily LLM batch, one row per prompt with its PROMPT_DATE. Written by upstream "
        "systems (the demo seed locally); the pipeline only reads it."
    ),
    group_name="batch",
    kinds={"snowflake"},
)


def _days(context: AssetExecutionContext) -> list[dt.date]:
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


# Declarative automation of the outputs: today's partition follows its validated input when that was
# materialized by a run that did not also write the outputs (the batch_inputs job, the UI), but only while the
# blocking drift check on the drift report has passed: `all_deps_blocking_checks_passed` carries the gate across
# runs (a blocking check alone only acts inside its own run, Dagster issue #17332). Updates of the drift report
# and of the batch deployment do not re-run a day by themselves (a new model version does not rewrite history).
BATCH_OUTPUTS_AUTOMATION = (
    AutomationCondition.eager().replace(
        "any_deps_updated",
        AutomationCondition.any_deps_updated().ignore(AssetSelection.assets(DRIFT_REPORT_KEY, BATCH_DEPLOYMENT_KEY)),
    )
    & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_behind_the_drift_gate")


def refuse_unless_drift_gate_passed(context: AssetExecutionContext) -> None:
    """The in-asset gate: this run's evaluation of the contract check if it made one, else the latest one."""
    from waldinger_assets.schema_drift.gate import PASSED, drift_gate_state

    gate = drift_gate_state(context.instance, context.run.run_id)
    if gate.status != PASSED:
        raise Failure(
            description=(
                f"Not writing batch outputs: {gate.describe()}. Fix the warehouse or accept the drift with "
                "`waldinger drift accept`, then run the daily_batch job (it runs the drift gate first), or "
                "materialize waldinger/schema_drift/drift_report before the outputs."
            ),
            allow_retries=False,
        )


@asset(
    key=BATCH_INPUT_KEY,
    deps=[batch_input_table.key, DRIFT_REPORT_KEY],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=warehouse_retry_policy(),
    group_name="batch",
    kinds={"snowflake", "python"},
    description=(
        "Each day's prompts, read from the input table and validated: every row kept, each with a status "
        "(ok, null_prompt, empty_prompt, too_long, control_characters, duplicate_id); only ok rows go to the "
        "model. Downstream of the drift gate: a blocking check failure on the drift report stops it in the "
        "same run."
    ),
)
def batch_input(
    context: AssetExecutionContext, warehouse: WarehouseResource, batch_files: BatchFilesResource
) -> MaterializeResult:
    from waldinger_assets.batch.job_files import write_validated

    table = qualified_name(*BATCH_INPUT_TABLE)
    per_day = {}
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        for day in _days(context):
            cursor.execute(
                f'SELECT "PROMPT_ID", "PROMPT" FROM {table} WHERE "PROMPT_DATE" = %s '
                'ORDER BY "PROMPT_ID", "CREATED_AT"',
                (day,),
            )
            validated = validate_prompts(cursor.fetchall(), max_chars=environment.max_prompt_chars())
            write_validated(batch_files.validated_prompts(day), validated)
            per_day[day.isoformat()] = validation_counts(validated)
            context.log.info(
                f"{day}: {per_day[day.isoformat()]['rows']} prompts, {per_day[day.isoformat()]['valid']} valid"
            )
    totals = {key: sum(counts[key] for counts in per_day.values()) for key in next(iter(per_day.values()))}
    metadata = {key: MetadataValue.int(value) for key, value in totals.items()}
    if len(per_day) > 1:
        metadata["per_day"] = MetadataValue.json(per_day)
    return MaterializeResult(metadata=metadata)


@asset(
    key=BATCH_OUTPUTS_KEY,
    deps=[BATCH_INPUT_KEY, DRIFT_REPORT_KEY],
    ins={"batch_deployment": AssetIn(key=BATCH_DEPLOYMENT_KEY)},
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    automation_condition=BATCH_OUTPUTS_AUTOMATION,
    retry_policy=warehouse_retry_policy(),
    group_name="batch",
    kinds={"snowflake", "python"},
    description=(
        "Each day's completions, one row per input row (rows in = rows out): prompt id, completion, tokens, "
        "latency, status and error message, model name, version and artifact sha256, code version and run id. "
        "Runs the batch deployment (the batch job through Dagster Pipes), then replaces the day in "
        "WALDINGER.LLM.BATCH_OUTPUTS in one transaction: a re-run leaves no duplicates, a failed run leaves the "
        "previous rows. Writes nothing unless the blocking drift check passed (in this run, or last)."
    ),
)
def batch_outputs(
    context: AssetExecutionContext,
    batch_deployment: dict,
    warehouse: WarehouseResource,
    batch_files: BatchFilesResource,
    batch_compute: BatchComputeResource,
) -> MaterializeResult:
    from resources.serving.artifacts import ServedArtifact
    from waldinger_assets.batch.job_files import read_results, read_validated, request_lines, write_requests
    from waldinger_assets.batch.output_table import Lineage, output_rows, replace_partitions

    refuse_unless_drift_gate_passed(context)
    artifact = ServedArtifact.from_json(batch_deployment)
    days = _days(context)
    prompts = {}
    for day in days:
        path = batch_files.validated_prompts(day)
        if not path.exists():
            raise Failure(
                f"No validated prompts for {day} at {path}; materialize waldinger/batch/batch_input for it.",
                allow_retries=False,
            )
        prompts[day] = read_validated(path)
    folder = batch_files.job_folder(context.run.run_id)
    requests_file, results_file = folder / "requests.jsonl", folder / "results.jsonl"
    requests = [
        line
        for day in days
        for line in request_lines(day, prompts[day], artifact.model, environment.batch_max_tokens())
    ]
    started = time.perf_counter()
    completed = folder / "job_completed.json"
    requests_sha256 = hashlib.sha256(json.dumps(requests, sort_keys=True).encode()).hexdigest()
    earlier = json.loads(completed.read_text()) if completed.is_file() else {}
    if requests and earlier.get("requests_sha256") == requests_sha256 and results_file.is_file():
        # A retry of this step in the same run (the warehouse write failed): the job's results are already
        # here, so the model does not run again (on Azure ML that is a GPU job).
        context.log.info(f"reusing the batch job results of this run's earlier attempt ({results_file})")
        figures, results = earlier["figures"], read_results(results_file)
    elif requests:
        write_requests(requests_file, requests)
        try:
            figures = batch_compute.run_job(
                context,
                artifact=artifact,
                requests_file=requests_file,
                output_file=results_file,
                fingerprint=f"{artifact.model}:{artifact.version}",
            )
        except Exception as error:
            # Not retried: the same model over the same prompts fails the same way (and on Azure ML each attempt
            # is a GPU job). The previous rows of these days stay as they were.
            raise Failure(
                f"The batch job failed ({type(error).__name__}: {str(error).splitlines()[0][:300]}); nothing was "
                "written. Its log is above; fix the cause, then re-run these partitions.",
                allow_retries=False,
            ) from error
        results = read_results(results_file)
        completed.write_text(json.dumps({"requests_sha256": requests_sha256, "figures": figures}, default=str))
    else:  # no valid prompt: no model load, no cluster job; the day still gets its rows (or none)
        figures, results = {"job": "not started: no valid prompt"}, {}
    job_seconds = time.perf_counter() - started
    lineage = Lineage(
        artifact.model, artifact.version, artifact.sha256, environment.code_version()[:64], context.run.run_id
    )
    created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows_by_day = {
        day: output_rows(day, prompts[day], results, lineage, environment.max_prompt_chars(), created_at)
        for day in days
    }
    for day, rows in rows_by_day.items():
        if len(rows) != len(prompts[day]):
            raise Failure(
                f"{day}: {len(prompts[day])} prompts in but {len(rows)} rows out; nothing written.", allow_retries=False
            )
    with warehouse.get_connection() as connection:
        written = replace_partitions(connection, rows_by_day)
    statuses: dict[str, int] = {}
    for rows in rows_by_day.values():
        for row in rows:
            statuses[row.status] = statuses.get(row.status, 0) + 1
    completion_tokens = sum(row.completion_tokens or 0 for rows in rows_by_day.values() for row in rows)
    context.log.info(f"wrote {sum(written.values())} rows for {len(days)} day(s): {json.dumps(statuses)}")
    return MaterializeResult(
        metadata={
            "rows": MetadataValue.int(sum(written.values())),
            "rows_per_day": MetadataValue.json({day.isoformat(): count for day, count in written.items()}),
            "statuses": MetadataValue.json(statuses),
            "requests_sent": MetadataValue.int(len(requests)),
            "completion_tokens": MetadataValue.int(completion_tokens),
            "job_wall_seconds": MetadataValue.float(round(job_seconds, 2)),
            "job_reported": MetadataValue.json(figures),
            "model_version": MetadataValue.text(artifact.version),
            "artifact_sha256": MetadataValue.text(artifact.sha256),
            "table": MetadataValue.text(".".join(BATCH_OUTPUTS_KEY)),
        }
    )
