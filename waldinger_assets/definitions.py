"""The Definitions of the Waldinger code location (workspace.yaml points here): each domain's own
Definitions, the sensors and schedules, and the resources of the current environment, merged.

Loading it stays light: torch, transformers, vllm, the azure SDKs and pulumi are imported only inside the
functions that need them.
"""

from dagster import Definitions

import sensors
from resources import build_resources
from waldinger_assets.batch import definitions as batch
from waldinger_assets.model import definitions as model
from waldinger_assets.schema_drift import definitions as schema_drift
from waldinger_assets.serving import definitions as serving
from waldinger_assets.training import definitions as training

# Modules, not their Definitions objects, are imported: Dagster loads a module with one Definitions at its top.
defs = Definitions.merge(
    schema_drift.defs,
    batch.defs,
    training.defs,
    model.defs,
    serving.defs,
    sensors.defs,
    Definitions(resources=build_resources()),
)
