"""The Definitions of the Waldinger code location (workspace.yaml points here): each domain's own
Definitions, the sensors and schedules, and the resources of the current environment, merged.

Loading it stays light: torch, transformers, vllm, the azure SDKs and pulumi are imported only inside the
functions that need them.
"""

from dagster import Definitions

from resources import build_resources
from sensors import defs as sensor_defs
from waldinger_assets.batch.definitions import defs as batch_defs
from waldinger_assets.model.definitions import defs as model_defs
from waldinger_assets.schema_drift.definitions import defs as schema_drift_defs
from waldinger_assets.serving.definitions import defs as serving_defs

defs = Definitions.merge(
    schema_drift_defs,
    batch_defs,
    model_defs,
    serving_defs,
    sensor_defs,
    Definitions(resources=build_resources()),
)
