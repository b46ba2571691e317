"""Jobs of the model domain: train and register a version (with its checks, evaluation included), evaluate a
version again, and promote a version."""

from __future__ import annotations

from dagster import AssetCheckKey, AssetKey, AssetSelection, define_asset_job

from waldinger_assets.model.assets import EVALUATION_CHECK, MODEL_SOURCE_KEY, PRODUCTION_MODEL_KEY, REGISTERED_MODEL_KEY
from waldinger_assets.training.names import FINE_TUNED_MODEL_KEY, TRAINING_DATASET_KEY

register_model_job = define_asset_job(
    "register_model",
    selection=AssetSelection.assets(MODEL_SOURCE_KEY, TRAINING_DATASET_KEY, FINE_TUNED_MODEL_KEY, REGISTERED_MODEL_KEY),
    description=(
        "Build the training dataset, fine-tune the base model, and register the result (idempotent per bytes), "
        "with its blocking checks: hash, loads and answers, evaluation on the eval split."
    ),
)

EVALUATION_CHECK_KEY = AssetCheckKey(AssetKey(REGISTERED_MODEL_KEY), EVALUATION_CHECK)
evaluate_model_job = define_asset_job(
    "evaluate_model",
    selection=AssetSelection.checks(EVALUATION_CHECK_KEY),
    description="Evaluate a registered version on the current eval split (run config: the check's version).",
)

promote_model_job = define_asset_job(
    "promote_model",
    selection=AssetSelection.assets(PRODUCTION_MODEL_KEY),
    description="Promote a registered version to production (run config: ops.<asset>.config.version).",
)
