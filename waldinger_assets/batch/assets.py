"""The batch input table, as the lineage graph's source: prompts land there from upstream systems."""

from __future__ import annotations

from dagster import AssetSpec

from waldinger_assets.demo_warehouse.catalog import BATCH_INPUT_TABLE

batch_input_table = AssetSpec(
    key=list(BATCH_INPUT_TABLE),
    description=(
        "Prompts for the daily LLM batch, one row per prompt with its PROMPT_DATE. Written by upstream "
        "systems (the demo seed locally); the pipeline only reads it."
    ),
    group_name="batch",
    kinds={"snowflake"},
)
