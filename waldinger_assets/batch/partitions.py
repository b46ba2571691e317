"""Daily partitions of the batch pipeline, on the input table's PROMPT_DATE (today included)."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from resources import environment

daily_partitions = DailyPartitionsDefinition(start_date=environment.batch_start_date(), end_offset=1)
