"""The batch pipeline the batch tests share: a small embedded warehouse (the demo prompts, no 3,000-object
catalog), the tiny model registered and in production, the drift gate, and the daily_batch job, each module with
its own data directory."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DagsterInstance, Definitions

from resources.alerts import AlertsResource
from resources.asset_values import LocalAssetValuesIOManager
from resources.batch_files import BatchFilesResource
from resources.model_registry import EmbeddedModelRegistryResource
from resources.model_registry.embedded import EmbeddedModelRegistry
from resources.model_source.tiny_model import TINY_MODEL_NAME, build_tiny_model
from resources.schema_drift import SchemaDriftSettings
from resources.serving import LocalBatchComputeResource
from resources.warehouse import embedded_warehouse
from waldinger_assets.batch.assets import batch_input, batch_input_table, batch_outputs
from waldinger_assets.batch.jobs import daily_batch_job
from waldinger_assets.demo_warehouse.catalog import DemoCatalog
from waldinger_assets.demo_warehouse.prompts import utc_today
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.schema_drift.assets import (
    contract_objects_have_no_breaking_drift,
    drift_report,
    schema_snapshot,
    warehouse_matches_baseline,
)
from waldinger_assets.serving.assets import batch_deployment

TODAY = utc_today()
# The training lineage a trained version's registry tags carry (what the batch outputs copy into each row).
TRAINING_TAGS = {"mlflow_run_id": "9f" * 16, "training_dataset_version": "ds-" + "ab" * 8, "code_version": "c0ffee"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    from resources.embedded_warehouse import control

    root = tmp_path_factory.mktemp("batch")
    data_dir = root / "data"
    warehouse = embedded_warehouse(data_dir)
    seed(warehouse.get_connection, today=TODAY, catalog=DemoCatalog(tables=(), views=()))
    registry = EmbeddedModelRegistry(data_dir / "registry")
    version, _ = registry.register(
        TINY_MODEL_NAME, build_tiny_model(root / "tiny"), tags={"artifact_sha256": "", **TRAINING_TAGS}, properties={}
    )
    registry.promote(TINY_MODEL_NAME, version.version)
    settings = SchemaDriftSettings(
        databases=["WALDINGER"],
        contract_objects=["WALDINGER.LLM.PROMPTS", "WALDINGER.LLM.BATCH_OUTPUTS"],
        baseline_path=str(root / "baseline.json"),
        history_dir=str(root / "history"),
        dagster_ui_url="http://dagster.test",
    )
    definitions = Definitions(
        assets=[batch_input_table, schema_snapshot, drift_report, batch_deployment, batch_input, batch_outputs],
        asset_checks=[contract_objects_have_no_breaking_drift, warehouse_matches_baseline],
        jobs=[daily_batch_job],
        resources={
            "warehouse": warehouse,
            "schema_drift": settings,
            "alerts": AlertsResource(outbox_path=str(root / "outbox.jsonl")),
            "model_registry": EmbeddedModelRegistryResource(
                model_name=TINY_MODEL_NAME, root=str(data_dir / "registry")
            ),
            "batch_compute": LocalBatchComputeResource(batch_size=32, engine="transformers"),
            "batch_files": BatchFilesResource(root=str(root / "storage")),
            "io_manager": LocalAssetValuesIOManager(base_dir=str(root / "storage")),
        },
    )

    class Pipeline:
        job = definitions.resolve_job_def("daily_batch")
        instance = DagsterInstance.ephemeral()

        def __init__(self):
            self.root, self.data_dir, self.registry, self.settings = root, data_dir, registry, settings

        def run(
            self,
            day: dt.date,
            last: dt.date | None = None,
            instance: DagsterInstance | None = None,
            run_id: str | None = None,
        ):
            instance = instance or self.instance
            if last is None:
                return self.job.execute_in_process(
                    partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_id=run_id
                )
            tags = {
                "dagster/asset_partition_range_start": day.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            }
            return self.job.execute_in_process(tags=tags, instance=instance, raise_on_error=False, run_id=run_id)

        def query(self, sql: str, *params):
            with warehouse.get_connection() as connection:
                cursor = connection.cursor()
                cursor.execute(sql, params)
                return cursor.fetchall()

        def rows(self, day: dt.date) -> int:
            return self.query('SELECT COUNT(*) FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s', day)[0][0]

    yield Pipeline()
    control.stop(data_dir)
