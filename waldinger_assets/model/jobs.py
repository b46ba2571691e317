"""Jobs of the model domain: register the source artifact (with its checks), and promote a version."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from waldinger_assets.model.assets import MODEL_SOURCE_KEY, PRODUCTION_MODEL_KEY, REGISTERED_MODEL_KEY

register_model_job = define_asset_job(
    "register_model",
    selection=AssetSelection.assets(MODEL_SOURCE_KEY, REGISTERED_MODEL_KEY),
    description="Fetch or build the model artifact and register it (idempotent), with its blocking checks.",
)

promote_model_job = define_asset_job(
    "promote_model",
    selection=AssetSelection.assets(PRODUCTION_MODEL_KEY),
    description="Promote a registered version to production (run config: ops.<asset>.config.version).",
)
