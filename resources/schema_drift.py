"""Settings of the schema drift gate, as a resource so the UI shows them and tests can point them elsewhere."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources import environment
from resources.schema_history import SchemaHistory


class SchemaDriftSettings(ConfigurableResource):
    databases: list[str] = Field(description="Databases to snapshot, as Snowflake stores their names.")
    contract_objects: list[str] = Field(description="DB.SCHEMA.NAME of the objects the pipeline depends on.")
    baseline_path: str = Field(description="The reviewable baseline file.")
    history_dir: str = Field(description="Where every run's snapshot and drift report are kept.")
    dagster_ui_url: str = Field(description="Base URL of the Dagster UI, for links in alerts.")

    def history(self):
        return SchemaHistory(Path(self.history_dir))


def schema_drift_settings() -> SchemaDriftSettings:
    return SchemaDriftSettings(
        databases=list(environment.configured_databases()),
        contract_objects=list(environment.contract_objects()),
        baseline_path=str(environment.baseline_path()),
        history_dir=str(environment.schema_history_dir()),
        dagster_ui_url=environment.dagster_ui_url(),
    )
