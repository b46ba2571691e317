"""The single Definitions object of the Waldinger code location (workspace.yaml points here).

Loading it stays light: torch, transformers, vllm, the azure SDKs and pulumi are imported only inside the
functions that need them.
"""

from __future__ import annotations

from dagster import Definitions

from resources import build_resources
from sensors import all_schedules, all_sensors
from waldinger_assets.batch.assets import batch_input, batch_input_table, batch_outputs
from waldinger_assets.batch.jobs import batch_inputs_job, daily_batch_job, schema_drift_job
from waldinger_assets.model.assets import (
    artifact_hash_matches,
    model_loads_and_answers,
    model_source,
    production_model,
    registered_model,
)
from waldinger_assets.model.jobs import promote_model_job, register_model_job
from waldinger_assets.schema_drift.assets import (
    contract_objects_have_no_breaking_drift,
    drift_report,
    schema_snapshot,
    warehouse_matches_baseline,
)
from waldinger_assets.serving.assets import batch_deployment, endpoint_serves_production_version, realtime_deployment
from waldinger_assets.serving.jobs import deploy_model_job

defs = Definitions(
    assets=[
        batch_input_table,
        schema_snapshot,
        drift_report,
        batch_input,
        model_source,
        registered_model,
        production_model,
        realtime_deployment,
        batch_deployment,
        batch_outputs,
    ],
    asset_checks=[
        contract_objects_have_no_breaking_drift,
        warehouse_matches_baseline,
        artifact_hash_matches,
        model_loads_and_answers,
        endpoint_serves_production_version,
    ],
    jobs=[schema_drift_job, batch_inputs_job, daily_batch_job, register_model_job, promote_model_job, deploy_model_job],
    schedules=all_schedules(),
    sensors=all_sensors(),
    resources=build_resources(),
)
