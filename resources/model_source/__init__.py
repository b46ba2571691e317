"""Where the model artifact comes from, per environment (see resources.environment.model_source)."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources import environment
from resources.model_source.fetch import describe as describe_source
from resources.model_source.fetch import fetch_source


class ModelSourceResource(ConfigurableResource):
    kind: str = Field(description="tiny (built offline), path, huggingface or azureml")
    value: str | None = Field(default=None, description="The folder, Hugging Face id or Azure ML model URI.")
    cache_dir: str = Field(description="Where built or downloaded artifacts are kept.")

    def fetch(self):
        return fetch_source(self.kind, self.value, Path(self.cache_dir))

    def describe(self) -> str:
        return describe_source(self.kind, self.value)


def model_source_resource() -> ModelSourceResource:
    setting = environment.model_source()
    return ModelSourceResource(
        kind=setting.kind, value=setting.value, cache_dir=str(environment.data_dir() / "models" / "source")
    )
