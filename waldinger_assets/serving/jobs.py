"""Jobs of the serving domain: deploy the production version to both targets."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from waldinger_assets.serving.assets import BATCH_DEPLOYMENT_KEY, REALTIME_DEPLOYMENT_KEY

deploy_model_job = define_asset_job(
    "deploy_model",
    selection=AssetSelection.assets(REALTIME_DEPLOYMENT_KEY, BATCH_DEPLOYMENT_KEY),
    description="Serve the production version: restart/update the real-time endpoint and pin the batch job to it.",
)
