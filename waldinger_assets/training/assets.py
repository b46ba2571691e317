"""Dagster glue for the training domain: labeled examples -> training dataset (Parquet, versioned by content) ->
fine-tuned model (the training job, tracked in MLflow)."""

import datetime as dt
import time
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetSpec,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from resources import environment
from resources.model_source import ModelSourceResource
from resources.snowflake_sql import qualified_name
from resources.training import TrainingComputeResource, TrainingInputs
from resources.training.settings import training_settings
from resources.warehouse import WarehouseResource
from waldinger_assets.training.dataset import (
    COLUMNS,
    answer_distribution_markdown,
    dataset_rows,
    dataset_version,
    split_counts,
    split_records,
)
from waldinger_assets.training.names import (
    EVAL_SPLIT,
    FINE_TUNED_MODEL_KEY,
    LABELED_EXAMPLES_TABLE,
    TRAIN_SPLIT,
    TRAINING_DATASET_KEY,
)
from waldinger_assets.warehouse_retries import warehouse_retry_policy
from waldinger_runtime.jsonl import write_jsonl

MODEL_SOURCE_KEY = ["waldinger", "model", "model_source"]  # the base model (model domain; keys are plain data)

labeled_examples_table = AssetSpec(
    key=list(LABELED_EXAMPLES_TABLE),
    description=(
        "Reviewed examples of the task (PROMPT, EXPECTED answer, LABELED_AT, SOURCE_PROMPT_ID when the example "
        "is a labeled batch prompt). Written by the labeling tool (the demo seed locally); the pipeline only "
        "reads it."
    ),
    group_name="training",
    kinds={"snowflake"},
)


class TrainingDatasetConfig(Config):
    cutoff: str = Field(
        default="",
        description="Labeled examples strictly before this UTC time (ISO 8601) are in the dataset; empty means "
        "the start of today (UTC), so the version holds for the day.",
    )


def _cutoff(config: TrainingDatasetConfig) -> dt.datetime:
    if not config.cutoff.strip():
        return dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time())
    try:
        value = dt.datetime.fromisoformat(config.cutoff.strip())
    except ValueError:
        raise Failure(
            f"cutoff {config.cutoff!r} is not an ISO 8601 time; use e.g. 2026-12-01 or 2026-12-01T12:00:00.",
            allow_retries=False,
        ) from None
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


@asset(
    key=TRAINING_DATASET_KEY,
    deps=[labeled_examples_table.key],
    retry_policy=warehouse_retry_policy(),
    group_name="training",
    kinds={"snowflake", "pandas", "parquet"},
    description=(
        "The labeled examples up to a cutoff, split train/eval by a hash of the example id (adding rows never "
        "moves an old row between splits), stored as Parquet through the IO manager and versioned by the "
        "sha256 of its content: the same data gives the same version."
    ),
)
def training_dataset(context: AssetExecutionContext, config: TrainingDatasetConfig, warehouse: WarehouseResource):
    import pandas

    cutoff = _cutoff(config)
    table = qualified_name(*LABELED_EXAMPLES_TABLE)
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute(
            f'SELECT "EXAMPLE_ID", "PROMPT", "EXPECTED", "LABELED_AT" FROM {table} WHERE "LABELED_AT" < %s',
            (cutoff,),
        )
        labeled = cursor.fetchall()
    eval_percent = training_settings().eval_percent
    dataset = dataset_rows(labeled, eval_percent)
    counts = split_counts(dataset.rows)
    if not counts[TRAIN_SPLIT] or not counts[EVAL_SPLIT]:
        raise Failure(
            f"{table} has {len(dataset.rows)} usable examples labeled before {cutoff:%Y-%m-%d %H:%M} UTC "
            f"({counts[TRAIN_SPLIT]} train, {counts[EVAL_SPLIT]} eval): both splits need rows. Label more "
            "examples (locally: `waldinger warehouse seed`), or move the cutoff (config `cutoff`).",
            allow_retries=False,
        )
    version = dataset_version(dataset.rows)
    for reason, count in dataset.dropped.items():
        context.log.warning(f"left out {count} labeled rows: {reason}")
    frame = pandas.DataFrame(dataset.rows, columns=list(COLUMNS))
    context.log.info(f"training dataset {version[:12]}: {counts[TRAIN_SPLIT]} train, {counts[EVAL_SPLIT]} eval rows")
    return Output(
        frame,
        metadata={
            "dataset_version": MetadataValue.text(version),
            "train_rows": MetadataValue.int(counts[TRAIN_SPLIT]),
            "eval_rows": MetadataValue.int(counts[EVAL_SPLIT]),
            "eval_percent": MetadataValue.int(eval_percent),
            "cutoff": MetadataValue.text(cutoff.isoformat()),
            "rows_left_out": MetadataValue.json(dataset.dropped),
            "answer_distribution": MetadataValue.md(answer_distribution_markdown(dataset.rows)),
        },
    )


def frame_rows(frame) -> list[dict]:
    """The dataset's rows back from its DataFrame (every column a string)."""
    return [{column: str(row[column]) for column in COLUMNS} for row in frame.to_dict("records")]


@asset(
    key=FINE_TUNED_MODEL_KEY,
    ins={"training_dataset": AssetIn(key=TRAINING_DATASET_KEY), "model_source": AssetIn(key=MODEL_SOURCE_KEY)},
    group_name="training",
    kinds={"pytorch", "mlflow", "azureml"},
    description=(
        "The base model fine-tuned on the train split by the training job (locally a subprocess training the "
        "tiny base in full; in prod an Azure ML command job with LoRA on Mistral-7B-Instruct, merged into the "
        "weights), tracked as an MLflow run (parameters, loss per step, eval metrics, the dataset version)."
    ),
)
def fine_tuned_model(
    context: AssetExecutionContext,
    training_dataset,
    model_source: dict,
    training_compute: TrainingComputeResource,
    model_source_settings: ModelSourceResource,
) -> Output[dict]:
    rows = frame_rows(training_dataset)
    version = dataset_version(rows)
    folder = environment.storage_dir() / "training" / context.run.run_id
    folder.mkdir(parents=True, exist_ok=True)
    train_file, eval_file = folder / "train.jsonl", folder / "eval.jsonl"
    write_jsonl(train_file, split_records(rows, TRAIN_SPLIT))
    write_jsonl(eval_file, split_records(rows, EVAL_SPLIT))
    azureml_uri = model_source_settings.value if model_source_settings.kind == "azureml" else None
    inputs = TrainingInputs(
        base_model_dir=Path(model_source["path"]),
        base_model_uri=azureml_uri,
        base_model_name=model_source["source"],
        train_file=train_file,
        eval_file=eval_file,
        dataset_version=version,
        code_version=environment.code_version(),
    )
    started = time.perf_counter()
    run = training_compute.train(context, inputs, folder / "model")
    figures = run.figures
    context.log.info(
        f"trained with {training_compute.method} in {figures.get('train_seconds')} s: eval exact match "
        f"{figures.get('eval_exact_match')}, MLflow run {figures.get('mlflow_run_id')}"
    )
    value = {
        "path": str(run.artifact_dir),
        "sha256": figures["artifact_sha256"],
        "mlflow_run_id": figures["mlflow_run_id"],
        "training_dataset_version": version,
        "base_model": model_source["source"],
        "base_model_sha256": model_source["sha256"],
        "method": training_compute.method,
        "code_version": inputs.code_version,
    }
    numeric = {key: value for key, value in figures.items() if isinstance(value, int | float)}
    return Output(
        value,
        metadata={
            "mlflow_run_id": MetadataValue.text(value["mlflow_run_id"]),
            "mlflow_tracking": MetadataValue.text(training_compute.tracking_location()),
            "training_dataset_version": MetadataValue.text(version),
            "artifact_sha256": MetadataValue.text(value["sha256"]),
            "base_model": MetadataValue.text(value["base_model"]),
            "method": MetadataValue.text(value["method"]),
            "trained_on": MetadataValue.text(run.where),
            **{key: MetadataValue.float(float(number)) for key, number in numeric.items()},
            "seconds": MetadataValue.float(round(time.perf_counter() - started, 2)),
        },
    )
