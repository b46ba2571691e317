"""Model version sensor: when a version is newly promoted in the registry (a promotion or a rollback), run
the deploy_model job so the real-time endpoint and the batch deployment serve it.

The cursor holds the last production state seen (version, artifact sha256, promotion time), so promoting the
same version again after a rollback is a new promotion. On its first tick the sensor compares the production
version with the one the real-time deployment last recorded, and deploys only if they differ.
"""

from dagster import AssetKey, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from resources import environment
from resources.model_registry import ModelRegistryResource
from sensors.cursors import TRIGGER_TAG, dump_cursor, load_cursor, next_sequence
from waldinger_assets.serving.assets import REALTIME_DEPLOYMENT_KEY
from waldinger_assets.serving.jobs import deploy_model_job

MODEL_VERSION_SENSOR = "model_version_sensor"


def production_state(registry, name: str) -> dict | None:
    production = registry.production(name)
    if production is None:
        return None
    promotions = [p for p in registry.promotions(name) if p.get("version") == production.version]
    return {
        "version": production.version,
        "sha256": production.sha256,
        "promoted_at": promotions[-1].get("at") if promotions else None,
    }


def deployed_state(instance) -> dict | None:
    """Version and sha256 the real-time deployment recorded when it was last materialized."""
    event = instance.get_latest_materialization_event(AssetKey(REALTIME_DEPLOYMENT_KEY))
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    if "version" not in metadata:
        return None
    return {"version": metadata["version"].value, "sha256": metadata.get("artifact_sha256").value}


@sensor(
    name=MODEL_VERSION_SENSOR,
    job=deploy_model_job,
    minimum_interval_seconds=environment.sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs deploy_model when a model version is newly promoted (or rolled back to) in the registry.",
)
def model_version_sensor(context: SensorEvaluationContext, model_registry: ModelRegistryResource) -> SensorResult:
    state = production_state(model_registry.registry(), model_registry.model_name)
    if state is None:
        return SensorResult(
            skip_reason=f"{model_registry.model_name} has no production version yet; run the promote_model job."
        )
    previous = load_cursor(context.cursor)
    if previous is None:
        deployed = deployed_state(context.instance)
        if deployed == {"version": state["version"], "sha256": state["sha256"]}:
            return SensorResult(
                skip_reason=f"Version {state['version']} is already deployed.",
                cursor=dump_cursor({"sequence": 0, "production": state}),
            )
    elif previous.get("production") == state:
        return SensorResult(skip_reason=f"Version {state['version']} is still the production version.")
    sequence = next_sequence(previous)
    context.log.info(f"{model_registry.model_name} version {state['version']} is in production: deploying it")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"deploy-{state['version']}-{sequence}",
                tags={TRIGGER_TAG: MODEL_VERSION_SENSOR, "waldinger/model_version": state["version"]},
            )
        ],
        cursor=dump_cursor({"sequence": sequence, "production": state}),
    )
