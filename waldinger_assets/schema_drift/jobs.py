"""Jobs of the schema drift domain: the drift gate (snapshot, drift report and its blocking check) on its own,
and the selection every batch job starts with, so the gate runs before the pipeline, in the same run."""

from dagster import AssetSelection, define_asset_job

from waldinger_assets.schema_drift.names import DRIFT_REPORT_KEY, SNAPSHOT_KEY

DRIFT_GATE = AssetSelection.assets(SNAPSHOT_KEY, DRIFT_REPORT_KEY)

schema_drift_job = define_asset_job(
    "schema_drift",
    selection=DRIFT_GATE,
    description="Snapshot the watched databases and report drift against the baseline.",
)
