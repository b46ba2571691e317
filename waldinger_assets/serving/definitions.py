"""The serving domain's definitions: the real-time and batch deployments of the production version."""

from dagster import Definitions

from waldinger_assets.serving.assets import batch_deployment, endpoint_serves_production_version, realtime_deployment
from waldinger_assets.serving.jobs import deploy_model_job

defs = Definitions(
    assets=[realtime_deployment, batch_deployment],
    asset_checks=[endpoint_serves_production_version],
    jobs=[deploy_model_job],
)
