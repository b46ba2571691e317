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
from pydantic import Field

from resources import environment
from resources.model_registry import ModelRegistryResource
from resources.model_source import ModelSourceResource
from waldinger_assets.model.inference_check import load_and_answer
from waldinger_assets.model.promotion import promote_verified
from waldinger_runtime.artifact import ArtifactError, artifact_files, artifact_sha256, verify_sha256

MODEL_SOURCE_KEY = ["waldinger", "model", "model_source"]
REGISTERED_MODEL_KEY = ["waldinger", "model", "registered_model"]
PRODUCTION_MODEL_KEY = ["waldinger", "model", "production_model"]
HASH_CHECK = "artifact_hash_matches"
CHAT_CHECK = "model_loads_and_answers_deterministically"


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
    ins={"model_source": AssetIn(key=MODEL_SOURCE_KEY)},
    group_name="model",
    kinds={"azureml", "python"},
    description=(
        "The artifact registered in the model registry (Azure ML in prod, the embedded registry locally): "
        "immutable versions; registering the same bytes again creates no new version. Tags carry the lineage: "
        "artifact sha256, source, code version (git commit) and the Dagster run id."
    ),
)
def registered_model(
    context: AssetExecutionContext, model_source: dict, model_registry: ModelRegistryResource
) -> Output:
    registry = model_registry.registry()
    started = time.perf_counter()
    version, created = registry.register(
        model_registry.model_name,
        Path(model_source["path"]),
        tags={
            "artifact_sha256": model_source["sha256"],
            "source": model_source["source"],
            "code_version": environment.code_version(),
            "dagster_run_id": context.run_id,
        },
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
            "lineage": MetadataValue.json(version.tags),
            "stage": MetadataValue.text(version.stage),
            "seconds": MetadataValue.float(round(seconds, 2)),
        },
    )


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
