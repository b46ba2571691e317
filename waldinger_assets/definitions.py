"""The single Definitions object of the Waldinger code location (workspace.yaml points here).

Loading it stays light: torch, transformers, vllm, the azure SDKs and pulumi are imported only inside the
functions that need them.
"""

from __future__ import annotations

from dagster import Definitions

from resources import build_resources
from sensors import all_schedules, all_sensors
from waldinger_assets.batch.assets import batch_input_table
from waldinger_assets.schema_drift.assets import warehouse_inventory

defs = Definitions(
    assets=[batch_input_table, warehouse_inventory],
    schedules=all_schedules(),
    sensors=all_sensors(),
    resources=build_resources(),
)
