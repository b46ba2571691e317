"""Where the batch pipeline keeps its files: each day's validated prompts and each run's job files (OpenAI
batch JSONL in and out). The storage directory locally; a mounted Azure Files share in prod."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources import environment


class BatchFilesResource(ConfigurableResource):
    root: str = Field(description="Folder of the batch files.")

    def validated_prompts(self, day: dt.date) -> Path:
        return Path(self.root) / "batch_input" / day.isoformat() / "prompts.jsonl"

    def job_folder(self, run_id: str) -> Path:
        return Path(self.root) / "batch_jobs" / run_id


def batch_files_resource() -> BatchFilesResource:
    return BatchFilesResource(root=str(environment.storage_dir()))
