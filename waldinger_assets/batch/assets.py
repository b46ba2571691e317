"""Dagster glue for the batch domain: the input table, each day's validated batch input, and each day's batch
outputs in Snowflake.

Both partitioned assets take a whole partition range in one run (BackfillPolicy.single_run), so
`dagster asset materialize --partition-range` and UI backfills load the model once for the range. The
validated prompts pass to the outputs as asset values, one per day (Dagster's IO manager).
"""

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass

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
    Output,
    asset,
)

from resources import environment
from resources.asset_values import DEFER_MISSING, MissingValue
from resources.batch_files import BatchFilesResource, BatchJobFiles
from resources.serving import BatchComputeResource
from resources.serving.artifacts import ServedArtifact
from resources.snowflake_sql import qualified_name
from resources.warehouse import WarehouseResource
from waldinger_assets.batch.job_files import read_results, request_lines, write_requests
from waldinger_assets.batch.names import BATCH_INPUT_KEY, BATCH_INPUT_TABLE, BATCH_OUTPUTS_KEY
from waldinger_assets.batch.output_table import Lineage, OutputRow, output_rows, replace_partitions
from waldinger_assets.batch.partitions import daily_partitions
from waldinger_assets.batch.validation import ValidatedPrompt, validate_prompts, validation_counts
from waldinger_assets.schema_drift.gate import DRIFT_GATE_OPEN, refuse_unless_open
from waldinger_assets.schema_drift.names import DRIFT_REPORT_KEY
from waldinger_assets.serving.assets import BATCH_DEPLOYMENT_KEY
from waldinger_assets.warehouse_retries import warehouse_retry_policy

__all__ = ["BATCH_INPUT_KEY", "BATCH_OUTPUTS_KEY"]

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
# drift gate is open (schema_drift.gate). Updates of the drift report and of the batch deployment do not re-run
# a day by themselves (a new model version does not rewrite history).
BATCH_OUTPUTS_AUTOMATION = (
    AutomationCondition.eager().replace(
        "any_deps_updated",
        AutomationCondition.any_deps_updated().ignore(AssetSelection.assets(DRIFT_REPORT_KEY, BATCH_DEPLOYMENT_KEY)),
    )
    & DRIFT_GATE_OPEN
).with_label("eager_behind_the_drift_gate")


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
def batch_input(context: AssetExecutionContext, warehouse: WarehouseResource) -> Output[dict]:
    table = qualified_name(*BATCH_INPUT_TABLE)
    validated_by_day, per_day = {}, {}
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        for day in _days(context):
            cursor.execute(
                f'SELECT "PROMPT_ID", "PROMPT" FROM {table} WHERE "PROMPT_DATE" = %s '
                'ORDER BY "PROMPT_ID", "CREATED_AT"',
                (day,),
            )
            validated = validate_prompts(cursor.fetchall(), max_chars=environment.max_prompt_chars())
            validated_by_day[day.isoformat()] = validated
            counts = per_day[day.isoformat()] = validation_counts(validated)
            context.log.info(f"{day}: {counts['rows']} prompts, {counts['valid']} valid")
    totals = {key: sum(counts[key] for counts in per_day.values()) for key in next(iter(per_day.values()))}
    metadata = {key: MetadataValue.int(value) for key, value in totals.items()}
    if len(per_day) > 1:
        metadata["per_day"] = MetadataValue.json(per_day)
    return Output(validated_by_day, metadata=metadata)


@dataclass(frozen=True)
class BatchJobOutcome:
    results: dict[str, dict]  # custom_id -> the job's result line
    figures: dict  # what the job reported through Pipes
    requests_sent: int
    seconds: float


def run_batch_job(
    context: AssetExecutionContext,
    prompts: dict[dt.date, list[ValidatedPrompt]],
    artifact: ServedArtifact,
    batch_files: BatchFilesResource,
    batch_compute: BatchComputeResource,
) -> BatchJobOutcome:
    """Runs the batch deployment over the valid prompts, or reuses this run's earlier attempt on the same
    requests (a retry after the warehouse write failed: on Azure ML the job is a GPU job)."""
    requests = [
        line
        for day, day_prompts in prompts.items()
        for line in request_lines(day, day_prompts, artifact.model, environment.batch_max_tokens())
    ]
    started = time.perf_counter()
    if not requests:  # no valid prompt: no model load, no cluster job; the days still get their rows
        return BatchJobOutcome({}, {"job": "not started: no valid prompt"}, 0, 0.0)
    requests_sha256 = hashlib.sha256(json.dumps(requests, sort_keys=True).encode()).hexdigest()
    files = batch_files.job_files(context.run.run_id, requests_sha256)
    earlier = files.completed()
    if earlier is not None:
        context.log.info(f"reusing the batch job results of this run's earlier attempt ({earlier.results_file})")
        figures = earlier.figures
    else:
        figures = _run_job(context, files, requests, artifact, batch_compute)
    return BatchJobOutcome(read_results(files.results_file), figures, len(requests), time.perf_counter() - started)


def _run_job(
    context: AssetExecutionContext,
    files: BatchJobFiles,
    requests: list[dict],
    artifact: ServedArtifact,
    batch_compute: BatchComputeResource,
) -> dict:
    write_requests(files.requests_file, requests)
    try:
        figures = batch_compute.run_job(
            context,
            artifact=artifact,
            requests_file=files.requests_file,
            output_file=files.results_file,
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
    files.mark_completed(figures)
    return figures


def _output_rows_by_day(
    context: AssetExecutionContext,
    prompts: dict[dt.date, list[ValidatedPrompt]],
    results: dict[str, dict],
    artifact: ServedArtifact,
) -> dict[dt.date, list[OutputRow]]:
    lineage = Lineage.of_version(
        artifact.model,
        artifact.version,
        artifact.sha256,
        environment.code_version()[:64],
        context.run.run_id,
        artifact.tags,
    )
    created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows_by_day = {
        day: output_rows(day, day_prompts, results, lineage, environment.max_prompt_chars(), created_at)
        for day, day_prompts in prompts.items()
    }
    for day, rows in rows_by_day.items():
        if len(rows) != len(prompts[day]):
            raise Failure(
                f"{day}: {len(prompts[day])} prompts in but {len(rows)} rows out; nothing written.", allow_retries=False
            )
    return rows_by_day


@asset(
    key=BATCH_OUTPUTS_KEY,
    deps=[DRIFT_REPORT_KEY],
    ins={
        # A day whose validated input is missing is reported after the drift gate (which may be why it is).
        "batch_input": AssetIn(key=BATCH_INPUT_KEY, metadata={DEFER_MISSING: True}),
        "batch_deployment": AssetIn(key=BATCH_DEPLOYMENT_KEY),
    },
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    automation_condition=BATCH_OUTPUTS_AUTOMATION,
    retry_policy=warehouse_retry_policy(),
    group_name="batch",
    kinds={"snowflake", "python"},
    description=(
        "Each day's completions, one row per input row (rows in = rows out): prompt id, completion and its parsed "
        "triage answer (category, priority, order id, parse status), tokens, latency, status and error message, "
        "model name, version and artifact sha256, code version and run id, and the model's training lineage "
        "(MLflow run, training dataset and code version, from the version's registry tags). "
        "Runs the batch deployment (the batch job through Dagster Pipes), then replaces the day in "
        "WALDINGER.LLM.BATCH_OUTPUTS in one transaction: a re-run leaves no duplicates, a failed run leaves the "
        "previous rows. Writes nothing unless the blocking drift check passed (in this run, or last)."
    ),
)
def batch_outputs(
    context: AssetExecutionContext,
    batch_input: dict,
    batch_deployment: ServedArtifact,
    warehouse: WarehouseResource,
    batch_files: BatchFilesResource,
    batch_compute: BatchComputeResource,
) -> MaterializeResult:
    refuse_unless_open(context.instance, context.run.run_id, "batch outputs")
    for value in batch_input.values():
        if isinstance(value, MissingValue):
            value.fail()
    prompts = {day: batch_input[day.isoformat()] for day in _days(context)}
    job = run_batch_job(context, prompts, batch_deployment, batch_files, batch_compute)
    rows_by_day = _output_rows_by_day(context, prompts, job.results, batch_deployment)
    with warehouse.get_connection() as connection:
        written = replace_partitions(connection, rows_by_day)
    statuses: dict[str, int] = {}
    for rows in rows_by_day.values():
        for row in rows:
            statuses[row.status] = statuses.get(row.status, 0) + 1
    completion_tokens = sum(row.completion_tokens or 0 for rows in rows_by_day.values() for row in rows)
    context.log.info(f"wrote {sum(written.values())} rows for {len(prompts)} day(s): {json.dumps(statuses)}")
    return MaterializeResult(
        metadata={
            "rows": MetadataValue.int(sum(written.values())),
            "rows_per_day": MetadataValue.json({day.isoformat(): count for day, count in written.items()}),
            "statuses": MetadataValue.json(statuses),
            "requests_sent": MetadataValue.int(job.requests_sent),
            "completion_tokens": MetadataValue.int(completion_tokens),
            "job_wall_seconds": MetadataValue.float(round(job.seconds, 2)),
            "job_reported": MetadataValue.json(job.figures),
            "model_version": MetadataValue.text(batch_deployment.version),
            "artifact_sha256": MetadataValue.text(batch_deployment.sha256),
            "table": MetadataValue.text(".".join(BATCH_OUTPUTS_KEY)),
        }
    )
