"""Dagster glue for the serving domain: the two deployments of the production model version, real-time and
batch, from ONE registered artifact."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    BackfillPolicy,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from resources.model_registry import ModelRegistryResource
from resources.serving import BatchComputeResource, RealtimeDeploymentResource
from resources.serving.artifacts import RealtimeDeployment, ServedArtifact, production_artifact
from waldinger_assets.model.assets import PRODUCTION_MODEL_KEY
from waldinger_assets.serving.smoke import smoke_test

REALTIME_DEPLOYMENT_KEY = ["waldinger", "serving", "realtime_deployment"]
BATCH_DEPLOYMENT_KEY = ["waldinger", "serving", "batch_deployment"]
SERVES_PRODUCTION_CHECK = "endpoint_serves_production_version"
SMOKE_REQUESTS = 8


def _production(model_registry: ModelRegistryResource, with_local_files: bool) -> ServedArtifact:
    return production_artifact(model_registry.registry(), model_registry.model_name, with_local_files)


@asset(
    key=REALTIME_DEPLOYMENT_KEY,
    deps=[PRODUCTION_MODEL_KEY],
    group_name="serving",
    kinds={"azure", "python"},
    description=(
        "The real-time OpenAI-compatible endpoint serving the production version: locally a background server "
        "(`waldinger serve status`), restarted when the production version changes; in prod the Azure Container "
        "Apps app running vLLM, updated so a new revision serves the new version. Metadata: URL, version and a "
        "smoke test's p50/p99 latency."
    ),
)
def realtime_deployment(
    context: AssetExecutionContext, model_registry: ModelRegistryResource, realtime_endpoint: RealtimeDeploymentResource
) -> Output[RealtimeDeployment]:
    artifact = _production(model_registry, realtime_endpoint.needs_local_files())
    deployed = realtime_endpoint.deploy(artifact)
    context.log.info(
        f"{deployed.target} serves {artifact.model} version {artifact.version} at {deployed.url} "
        f"({'updated' if deployed.updated else 'already serving it'})"
    )
    smoke = smoke_test(deployed.url, artifact.model, requests=SMOKE_REQUESTS, api_key=realtime_endpoint.api_key)
    return Output(
        deployed,
        metadata={
            "url": MetadataValue.url(deployed.url),
            "model": MetadataValue.text(artifact.model),
            "version": MetadataValue.text(artifact.version),
            "artifact_sha256": MetadataValue.text(artifact.sha256),
            "target": MetadataValue.text(deployed.target),
            "updated": MetadataValue.bool(deployed.updated),
            **{key: value for key, value in smoke.metadata().items()},
        },
    )


@asset_check(
    asset=REALTIME_DEPLOYMENT_KEY,
    name=SERVES_PRODUCTION_CHECK,
    description="The endpoint answers and serves the production version (and its bytes) of the model.",
)
def endpoint_serves_production_version(
    context: AssetCheckExecutionContext,
    model_registry: ModelRegistryResource,
    realtime_endpoint: RealtimeDeploymentResource,
) -> AssetCheckResult:
    expected = _production(model_registry, with_local_files=False)
    served = realtime_endpoint.served()
    passed = (served.version, served.sha256) == (expected.version, expected.sha256)
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=None
        if passed
        else (
            f"The endpoint serves version {served.version!r}, production is {expected.version!r}; "
            "materialize waldinger/serving/realtime_deployment (or `waldinger serve start` locally)."
        ),
        metadata={
            "expected_version": MetadataValue.text(expected.version),
            "served_version": MetadataValue.text(str(served.version)),
            "url": MetadataValue.text(str(served.url)),
        },
    )


@asset(
    key=BATCH_DEPLOYMENT_KEY,
    deps=[PRODUCTION_MODEL_KEY],
    group_name="serving",
    backfill_policy=BackfillPolicy.single_run(),  # runs once in a backfill of the daily batch
    kinds={"azureml", "python"},
    description=(
        "The batch deployment: which registered version the daily batch job runs, and where (a local "
        "subprocess, or an Azure ML command job on the cluster with min 0 nodes), both through Dagster Pipes. "
        "The same artifact as the real-time endpoint."
    ),
)
def batch_deployment(
    context: AssetExecutionContext, model_registry: ModelRegistryResource, batch_compute: BatchComputeResource
) -> Output[ServedArtifact]:
    artifact = _production(model_registry, batch_compute.needs_local_files())
    context.log.info(f"the batch job runs {artifact.model} version {artifact.version} ({artifact.model_uri})")
    return Output(
        artifact,
        metadata={
            "model": MetadataValue.text(artifact.model),
            "version": MetadataValue.text(artifact.version),
            "artifact_sha256": MetadataValue.text(artifact.sha256),
            "model_uri": MetadataValue.text(artifact.model_uri),
            "compute": MetadataValue.text(type(batch_compute).__name__),
            "batch_size": MetadataValue.int(batch_compute.batch_size),
        },
    )
