"""Dagster glue for the batch domain: the input table and each day's validated batch input.

(No `from __future__ import annotations`: Dagster reads the context type hint at definition time.)
"""

import datetime as dt

from dagster import AssetExecutionContext, AssetSpec, MetadataValue, Output, asset

from resources import environment
from resources.warehouse import WarehouseResource
from waldinger_assets.batch.partitions import daily_partitions
from waldinger_assets.batch.validation import validate_prompts, validation_counts
from waldinger_assets.demo_warehouse.catalog import BATCH_INPUT_TABLE
from waldinger_assets.schema_drift.assets import DRIFT_REPORT_KEY
from waldinger_assets.snowflake_sql import qualified_name

BATCH_INPUT_KEY = ["waldinger", "batch", "batch_input"]

batch_input_table = AssetSpec(
    key=list(BATCH_INPUT_TABLE),
    description=(
        "Prompts for the daily LLM batch, one row per prompt with its PROMPT_DATE. Written by upstream "
        "systems (the demo seed locally); the pipeline only reads it."
    ),
    group_name="batch",
    kinds={"snowflake"},
)


@asset(
    key=BATCH_INPUT_KEY,
    deps=[batch_input_table.key, DRIFT_REPORT_KEY],
    partitions_def=daily_partitions,
    group_name="batch",
    kinds={"snowflake", "pandas"},
    description=(
        "One day's prompts, read from the input table and validated: every row kept, each with a status "
        "(ok, null_prompt, empty_prompt, too_long, duplicate_id). Downstream of the drift gate: a blocking "
        "check failure on the drift report stops it in the same run."
    ),
)
def batch_input(context: AssetExecutionContext, warehouse: WarehouseResource) -> Output:
    import pandas as pd

    day = dt.date.fromisoformat(context.partition_key)
    table = qualified_name(*BATCH_INPUT_TABLE)
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute(
            f'SELECT "PROMPT_ID", "PROMPT" FROM {table} WHERE "PROMPT_DATE" = %s ORDER BY "PROMPT_ID", "CREATED_AT"',
            (day,),
        )
        rows = cursor.fetchall()
    validated = validate_prompts(rows, max_chars=environment.max_prompt_chars())
    counts = validation_counts(validated)
    frame = pd.DataFrame(
        {
            "prompt_id": [v.prompt_id for v in validated],
            "prompt_date": [day] * len(validated),
            "prompt": [v.prompt for v in validated],
            "status": [v.status for v in validated],
        }
    )
    context.log.info(f"{day}: {counts['rows']} prompts, {counts['valid']} valid")
    return Output(frame, metadata={key: MetadataValue.int(value) for key, value in counts.items()})
