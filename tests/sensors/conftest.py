"""A project per test module for the automation tests: a small embedded warehouse (the batch tables only) in
the module's own data directory, the tiny model registered and promoted, its own baseline, schema history and
storage, the project's own resources (`build_resources()` under those settings) and a persistent Dagster
instance, as the daemon would use. Nothing of it is shared with another module or left in the process
environment, so modules pass in any order and on any worker. Tests leave the gate open and the instance's
deployments as they found them when they end, and set up any other state they need themselves."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from dagster import AssetSelection, Definitions, build_sensor_context, instance_for_test, materialize

from resources.model_registry.embedded import EmbeddedModelRegistry
from resources.model_source.tiny_model import TINY_MODEL_NAME, build_tiny_model
from tests.helpers import instance_env, waldinger_cli
from waldinger_assets.batch.assets import BATCH_OUTPUTS_KEY
from waldinger_assets.demo_warehouse.catalog import DemoCatalog
from waldinger_assets.demo_warehouse.prompts import utc_today
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.serving.assets import BATCH_DEPLOYMENT_KEY

TODAY = utc_today()
PROMPTS = '"WALDINGER"."LLM"."PROMPTS"'


class Project:
    def __init__(
        self, root: Path, env: dict[str, str], definitions: Definitions, resources: dict, instance, registry
    ) -> None:
        self.root, self.env, self.definitions, self.resources = root, env, definitions, resources
        self.instance, self.registry = instance, registry
        self.outbox = root / "data" / "alerts" / "outbox.jsonl"

    def run_job(self, name: str, partition: dt.date | None = None, tags: dict | None = None, last=None):
        job = self.definitions.resolve_job_def(name)
        tags = dict(tags or {})
        if last is not None:
            tags["dagster/asset_partition_range_start"] = partition.isoformat()
            tags["dagster/asset_partition_range_end"] = last.isoformat()
            partition = None
        return job.execute_in_process(
            instance=self.instance,
            partition_key=partition.isoformat() if partition else None,
            tags=tags,
            raise_on_error=False,
        )

    def materialize_outputs_alone(self, first: dt.date, last: dt.date):
        """An asset backfill of the outputs alone: no drift gate in the run."""
        assets = list(self.definitions.assets) + list(self.definitions.asset_checks)
        return materialize(
            assets,
            selection=AssetSelection.assets(BATCH_OUTPUTS_KEY),
            instance=self.instance,
            resources=self.resources,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
            raise_on_error=False,
        )

    def deploy_batch_model(self) -> None:
        """Materializes the batch deployment (the production version), as the daily_batch job does first."""
        assets = list(self.definitions.assets) + list(self.definitions.asset_checks)
        deployed = materialize(
            assets,
            selection=AssetSelection.assets(BATCH_DEPLOYMENT_KEY),
            instance=self.instance,
            resources=self.resources,
        )
        assert deployed.success

    def sql(self, statement: str, *params):
        with self.resources["warehouse"].get_connection() as connection:
            cursor = connection.cursor()
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None

    def output_rows(self, day: dt.date) -> int:
        return self.sql('SELECT COUNT(*) FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s', day)[0][0]

    def add_prompts(self, day: dt.date, count: int, prefix: str) -> None:
        created = dt.datetime.combine(day, dt.time(12))
        for index in range(count):
            self.sql(
                f'INSERT INTO {PROMPTS} ("PROMPT_ID", "PROMPT_DATE", "PROMPT", "CREATED_AT") VALUES (%s, %s, %s, %s)',
                f"{prefix}-{index}",
                day,
                f"Summarize ticket {prefix}-{index} in one line.",
                created,
            )

    def break_contract(self) -> None:
        self.sql(f'ALTER TABLE {PROMPTS} RENAME COLUMN "USER_ID" TO "USER_KEY"')

    def restore_contract(self) -> None:
        self.sql(f'ALTER TABLE {PROMPTS} RENAME COLUMN "USER_KEY" TO "USER_ID"')

    def accept(self) -> None:
        accepted = waldinger_cli("drift", "accept", env=self.env)
        assert accepted.returncode == 0, accepted.stderr

    def sensor_context(self, cursor: str | None = None):
        return build_sensor_context(instance=self.instance, cursor=cursor, resources=self.resources)

    def alerts(self) -> list[dict]:
        return [json.loads(line) for line in self.outbox.read_text().splitlines()] if self.outbox.exists() else []


@pytest.fixture(scope="module")
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from resources import build_resources
    from resources.embedded_warehouse import control
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.definitions import defs

    root = tmp_path_factory.mktemp(f"automation-{request.module.__name__.rpartition('.')[2]}")
    data_dir = root / "data"
    # The settings the project reads from its environment; build_resources() reads them once, here, and the
    # commands the tests run get them explicitly, so the process environment is left as it was.
    env = instance_env(root, WALDINGER_DAGSTER_URL="http://dagster.test")
    settings = {name: value for name, value in env.items() if os.environ.get(name) != value}
    try:
        seed(embedded_warehouse(data_dir).get_connection, today=TODAY, catalog=DemoCatalog(tables=(), views=()))
        registry = EmbeddedModelRegistry(data_dir / "registry")
        version, _ = registry.register(
            TINY_MODEL_NAME, build_tiny_model(root / "tiny"), tags={"artifact_sha256": ""}, properties={}
        )
        registry.promote(TINY_MODEL_NAME, version.version)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in settings.items():
                patch.setenv(name, value)
            resources = build_resources()
        definitions = Definitions(
            assets=list(defs.assets),
            asset_checks=list(defs.asset_checks),
            jobs=list(defs.jobs),
            schedules=list(defs.schedules),
            sensors=list(defs.sensors),
            resources=resources,
        )
        (root / "dagster_home").mkdir()
        with instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
            project = Project(root, env, definitions, resources, instance, registry)
            project.accept()
            yield project
    finally:
        control.stop(data_dir)
