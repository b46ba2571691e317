"""Jobs that materialize batch inputs and outputs. Each starts with the schema snapshot and the
drift report with its blocking check, so the gate runs before the pipeline, in the same run."""

from dagster import AssetSelection, define_asset_job

from waldinger_assets.batch.names import BATCH_INPUT_KEY, BATCH_OUTPUTS_KEY
from waldinger_assets.batch.partitions import daily_partitions
from waldinger_assets.schema_drift.jobs import DRIFT_GATE
from waldinger_assets.serving.assets import BATCH_DEPLOYMENT_KEY

batch_inputs_job = define_asset_job(
    "batch_inputs",
    selection=DRIFT_GATE | AssetSelection.assets(BATCH_INPUT_KEY),
    partitions_def=daily_partitions,
    description="Snapshot + drift gate, then that day's validated batch input.",
)

daily_batch_job = define_asset_job(
    "daily_batch",
    selection=DRIFT_GATE | AssetSelection.assets(BATCH_DEPLOYMENT_KEY, BATCH_INPUT_KEY, BATCH_OUTPUTS_KEY),
    partitions_def=daily_partitions,
    description=(
        "Snapshot + drift gate, the batch deployment (the production version), then each day's validated input "
        "and batch outputs in Snowflake. Backfill it over a partition range: one run, one model load."
    ),
)
