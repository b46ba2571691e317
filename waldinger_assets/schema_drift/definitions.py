"""The schema drift domain's definitions: snapshot, drift report, its checks and the gate's job."""

from dagster import Definitions

from waldinger_assets.schema_drift.assets import (
    contract_objects_have_no_breaking_drift,
    drift_report,
    schema_snapshot,
    warehouse_matches_baseline,
)
from waldinger_assets.schema_drift.jobs import schema_drift_job

defs = Definitions(
    assets=[schema_snapshot, drift_report],
    asset_checks=[contract_objects_have_no_breaking_drift, warehouse_matches_baseline],
    jobs=[schema_drift_job],
)
