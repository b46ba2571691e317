"""The batch job's files: the OpenAI batch JSONL requests it reads and the results it writes, in a folder of
their own per run and per set of requests. The storage directory locally; a mounted Azure Files share in prod
(the Azure ML job gets its requests through Blob Storage).

The folder is keyed by the run id AND the sha256 of the requests, so two runs never share files, and a retry
of the batch outputs step in the same run finds the results of its earlier attempt (the model does not run
again; on Azure ML that is a GPU job).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources import environment


@dataclass(frozen=True)
class CompletedJob:
    """What a finished batch job left for a retry of the same step: its results and the figures it reported."""

    results_file: Path
    figures: dict


@dataclass(frozen=True)
class BatchJobFiles:
    folder: Path

    @property
    def requests_file(self) -> Path:
        return self.folder / "requests.jsonl"

    @property
    def results_file(self) -> Path:
        return self.folder / "results.jsonl"

    @property
    def _completed_marker(self) -> Path:
        return self.folder / "job_completed.json"

    def completed(self) -> CompletedJob | None:
        """The job that already ran on exactly these requests in this run, if it finished."""
        if not (self._completed_marker.is_file() and self.results_file.is_file()):
            return None
        figures = json.loads(self._completed_marker.read_text())
        return CompletedJob(results_file=self.results_file, figures=figures)

    def mark_completed(self, figures: dict) -> None:
        self._completed_marker.write_text(json.dumps(figures, default=str))


class BatchFilesResource(ConfigurableResource):
    root: str = Field(description="Folder of the batch job files.")

    def job_files(self, run_id: str, requests_sha256: str) -> BatchJobFiles:
        folder = Path(self.root) / "batch_jobs" / run_id / requests_sha256[:16]
        folder.mkdir(parents=True, exist_ok=True)
        return BatchJobFiles(folder)


def batch_files_resource() -> BatchFilesResource:
    return BatchFilesResource(root=str(environment.storage_dir()))
