"""Dagster glue for the model domain: source artifact -> registered version (with checks) -> production."""

import time
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    Config,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    asset_check,
)
from dagster import Field as DagsterField
from pydantic import Field

from resources import environment
from resources.batch_files import BatchFilesResource
from resources.model_registry import ModelRegistryResource
from resources.model_source import ModelSourceResource
from resources.serving import BatchComputeResource
from waldinger_assets.model.evaluation import evaluate_and_record
from waldinger_assets.model.inference_check import load_and_answer
from waldinger_assets.model.promotion import promote_verified
from waldinger_assets.training.names import FINE_TUNED_MODEL_KEY, TRAINING_DATASET_KEY
from waldinger_runtime.artifact import ArtifactError, artifact_files, artifact_sha256, verify_sha256

MODEL_SOURCE_KEY = ["waldinger", "model", "model_source"]
REGISTERED_MODEL_KEY = ["waldinger", "model", "registered_model"]
PRODUCTION_MODEL_KEY = ["waldinger", "model", "production_model"]
HASH_CHECK = "artifact_hash_matches"
CHAT_CHECK = "model_loads_and_answers_deterministically"
EVALUATION_CHECK = "evaluation_on_the_eval_split"


@asset(
    key=MODEL_SOURCE_KEY,
    group_name="model",
    kinds={"huggingface", "python"},
    description=(
        "The model artifact (weights, config, tokenizer, chat template) on local disk: Mistral-7B-Instruct from "
        "the configured path, Hugging Face id or Azure ML registry in prod; locally a tiny Mistral-architecture "
        "model built from a seed (same bytes every build, no download)."
    ),
)
def model_source(context: AssetExecutionContext, model_source_settings: ModelSourceResource) -> Output:
    started = time.perf_counter()
    path = model_source_settings.fetch()
    sha256 = artifact_sha256(path)
    size = sum(p.stat().st_size for p in artifact_files(path))
    value = {"path": str(path), "sha256": sha256, "source": model_source_settings.describe()}
    context.log.info(f"model source {value['source']} at {path} ({size:,} bytes)")
    return Output(
        value,
        metadata={
            "artifact_sha256": MetadataValue.text(sha256),
            "source": MetadataValue.text(value["source"]),
            "bytes": MetadataValue.int(size),
            "path": MetadataValue.path(str(path)),
            "seconds": MetadataValue.float(round(time.perf_counter() - started, 2)),
        },
    )


@asset(
    key=REGISTERED_MODEL_KEY,
    ins={"fine_tuned_model": AssetIn(key=FINE_TUNED_MODEL_KEY)},
    group_name="model",
    kinds={"azureml", "python"},
    description=(
        "The fine-tuned artifact registered in the model registry (Azure ML in prod, the embedded registry "
        "locally): immutable versions; registering the same bytes again creates no new version. Tags carry the "
        "lineage: artifact sha256, MLflow run, training dataset version, base model, code version (git commit) "
        "and the Dagster run id. Its evaluation on the eval split is a blocking check; the registry stores "
        "the metrics with the version."
    ),
)
def registered_model(
    context: AssetExecutionContext, fine_tuned_model: dict, model_registry: ModelRegistryResource
) -> Output:
    registry = model_registry.registry()
    started = time.perf_counter()
    version, created = registry.register(
        model_registry.model_name,
        Path(fine_tuned_model["path"]),
        tags=training_lineage_tags(fine_tuned_model, run_id=context.run_id),
        properties={"registered_by": "waldinger", "format": "transformers"},
    )
    seconds = time.perf_counter() - started
    context.log.info(
        f"{'registered new' if created else 'already registered as'} {version.name} version {version.version}"
    )
    return Output(
        {"name": version.name, "version": version.version, "sha256": version.sha256},
        metadata={
            "version": MetadataValue.text(version.version),
            "new_version": MetadataValue.bool(created),
            "artifact_sha256": MetadataValue.text(version.sha256),
            "mlflow_run_id": MetadataValue.text(version.tags.get("mlflow_run_id", "")),
            "training_dataset_version": MetadataValue.text(version.tags.get("training_dataset_version", "")),
            "lineage": MetadataValue.json(version.tags),
            "stage": MetadataValue.text(version.stage),
            "seconds": MetadataValue.float(round(seconds, 2)),
        },
    )


def training_lineage_tags(fine_tuned: dict, run_id: str | None) -> dict[str, str]:
    """The registry tags of a fine-tuned artifact: where it came from, down to the code commit."""
    return {
        "artifact_sha256": fine_tuned["sha256"],
        "source": f"fine-tuned ({fine_tuned['method']}) from {fine_tuned['base_model']}",
        "base_model": fine_tuned["base_model"],
        "base_model_sha256": fine_tuned["base_model_sha256"],
        "mlflow_run_id": fine_tuned["mlflow_run_id"],
        "training_dataset_version": fine_tuned["training_dataset_version"],
        "training_method": fine_tuned["method"],
        "code_version": fine_tuned.get("code_version") or environment.code_version(),
        **({"dagster_run_id": run_id} if run_id else {}),
    }


def _registered(context: AssetCheckExecutionContext, model_registry: ModelRegistryResource):
    registry = model_registry.registry()
    latest = registry.list_versions(model_registry.model_name)
    if not latest:
        raise RuntimeError(f"No version of {model_registry.model_name} is registered; materialize registered_model.")
    return registry, latest[-1]


@asset_check(
    asset=REGISTERED_MODEL_KEY,
    name=HASH_CHECK,
    blocking=True,
    description="The registered files hash to the artifact_sha256 tag they were registered with.",
)
def artifact_hash_matches(
    context: AssetCheckExecutionContext, model_registry: ModelRegistryResource
) -> AssetCheckResult:
    registry, version = _registered(context, model_registry)
    try:
        verify_sha256(registry.local_path(version), version.sha256)
    except ArtifactError as error:
        return AssetCheckResult(passed=False, description=str(error), metadata={"version": version.version})
    return AssetCheckResult(passed=True, metadata={"version": version.version, "artifact_sha256": version.sha256})


@asset_check(
    asset=REGISTERED_MODEL_KEY,
    name=CHAT_CHECK,
    blocking=True,
    description="The registered version loads and answers a chat prompt, the same reply twice (greedy).",
)
def model_loads_and_answers_deterministically(
    context: AssetCheckExecutionContext, model_registry: ModelRegistryResource
) -> AssetCheckResult:
    registry, version = _registered(context, model_registry)
    path = registry.local_path(version)
    first, second = load_and_answer(path), load_and_answer(path)
    return AssetCheckResult(
        passed=bool(first.token_ids) and first.token_ids == second.token_ids,
        metadata={
            "version": MetadataValue.text(version.version),
            "reply": MetadataValue.text(repr(first.text)),
            "load_seconds": MetadataValue.float(round(first.load_seconds, 3)),
            "generate_seconds": MetadataValue.float(round(first.generate_seconds, 3)),
        },
    )


@asset_check(
    asset=REGISTERED_MODEL_KEY,
    name=EVALUATION_CHECK,
    blocking=True,
    additional_ins={"training_dataset": AssetIn(key=TRAINING_DATASET_KEY)},
    config_schema={"version": DagsterField(str, default_value="", description="Version to evaluate; empty: latest.")},
    description=(
        "The version answers the eval split of the current training dataset through the batch deployment's "
        "engine (greedy): exact match, parse rate, per-field accuracy, latency. The metrics are stored with the "
        "version in the registry; the check fails below the promotion threshold (exact match)."
    ),
)
def evaluation_on_the_eval_split(
    context: AssetCheckExecutionContext,
    training_dataset,
    model_registry: ModelRegistryResource,
    batch_compute: BatchComputeResource,
    batch_files: BatchFilesResource,
) -> AssetCheckResult:
    registry = model_registry.registry()
    requested = (context.op_execution_context.op_config or {}).get("version", "")
    version = (
        registry.get(model_registry.model_name, requested) if requested else _registered(context, model_registry)[1]
    )
    result = evaluate_and_record(context, registry, version, training_dataset, batch_compute, batch_files)
    return result.check_result()


class PromotionConfig(Config):
    version: str = Field(default="", description="Version to promote; empty means the latest registered one.")
    min_exact_match: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Least exact match on the eval split the version needs; empty means "
        "WALDINGER_PROMOTION_MIN_EXACT_MATCH (default 0.9).",
    )
    max_regression: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="How much lower than the production version's exact match it may be; empty means "
        "WALDINGER_PROMOTION_MAX_REGRESSION (default 0.01).",
    )
    override_gate: bool = Field(
        default=False, description="Promote even if the evaluation gate refuses; needs a reason, which is recorded."
    )
    reason: str = Field(default="", description="Why the gate is overridden (required with override_gate).")


@asset(
    key=PRODUCTION_MODEL_KEY,
    deps=[REGISTERED_MODEL_KEY],
    group_name="model",
    kinds={"azureml"},
    description=(
        "The version serving in production. Materializing it promotes a version (config `version`, default the "
        "latest) after verifying it (hash, loads, answers) and through the evaluation gate (exact match at least "
        "min_exact_match and no worse than production by more than max_regression; override_gate with a reason "
        "overrides it, recorded); its materialization history is the promotion history, with each version's "
        "metrics. Roll back with `waldinger model rollback`."
    ),
)
def production_model(
    context: AssetExecutionContext, config: PromotionConfig, model_registry: ModelRegistryResource
) -> MaterializeResult:
    promotion = promote_verified(
        model_registry.registry(),
        model_registry.model_name,
        config.version or None,
        run_id=context.run_id,
        min_exact_match=config.min_exact_match,
        max_regression=config.max_regression,
        override_gate=config.override_gate,
        reason=config.reason or None,
    )
    if promotion.override_reason:
        context.log.warning(
            f"{promotion.name} version {promotion.version} promoted despite the evaluation gate "
            f"({promotion.gate.summary()}); reason: {promotion.override_reason}"
        )
    return MaterializeResult(metadata=promotion.metadata())
