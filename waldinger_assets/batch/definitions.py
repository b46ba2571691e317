"""The batch domain's definitions: the input table, the daily validated input and outputs, and their jobs."""

from dagster import Definitions

from waldinger_assets.batch.assets import batch_input, batch_input_table, batch_outputs
from waldinger_assets.batch.jobs import batch_inputs_job, daily_batch_job

defs = Definitions(assets=[batch_input_table, batch_input, batch_outputs], jobs=[batch_inputs_job, daily_batch_job])
