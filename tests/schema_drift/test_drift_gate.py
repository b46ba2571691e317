"""The gate end to end on the embedded warehouse: a breaking change on a contract object stops the batch input
in the same run and alerts; accepting it lets the next run through; drift elsewhere only warns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions

from resources.alerts import AlertsResource
from resources.asset_values import LocalAssetValuesIOManager
from resources.batch_files import BatchFilesResource
from resources.schema_drift import SchemaDriftSettings
from resources.warehouse import embedded_warehouse
from tests.helpers import waldinger_cli
from waldinger_assets.batch.assets import BATCH_INPUT_KEY, batch_input, batch_input_table
from waldinger_assets.batch.jobs import batch_inputs_job
from waldinger_assets.demo_warehouse.catalog import ColumnSpec, DemoCatalog, TableSpec
from waldinger_assets.demo_warehouse.prompts import utc_today
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.schema_drift.assets import (
    CONTRACT_CHECK,
    WAREHOUSE_CHECK,
    contract_objects_have_no_breaking_drift,
    drift_report,
    schema_snapshot,
    warehouse_matches_baseline,
)

pytestmark = pytest.mark.slow

CONTRACT = ["WALDINGER.LLM.PROMPTS", "WALDINGER.LLM.BATCH_OUTPUTS"]
SIDE_TABLE = TableSpec(
    "RAW", "SALES", "ORDERS", (ColumnSpec("ID", "NUMBER(38,0)", False), ColumnSpec("NOTE", "VARCHAR(100)"))
)


@pytest.fixture
def gate(data_dir: Path, tmp_path: Path):
    """A small warehouse (the batch input table and one other table) and the batch_inputs job wired to it."""
    warehouse = embedded_warehouse(data_dir)
    seed(warehouse.get_connection, today=utc_today(), catalog=DemoCatalog(tables=(SIDE_TABLE,), views=()))
    settings = SchemaDriftSettings(
        databases=["RAW", "WALDINGER"],
        contract_objects=CONTRACT,
        baseline_path=str(tmp_path / "baseline.json"),
        history_dir=str(tmp_path / "history"),
        dagster_ui_url="http://dagster.test",
    )
    outbox = tmp_path / "outbox.jsonl"
    definitions = Definitions(
        assets=[batch_input_table, schema_snapshot, drift_report, batch_input],
        asset_checks=[contract_objects_have_no_breaking_drift, warehouse_matches_baseline],
        jobs=[batch_inputs_job],
        resources={
            "warehouse": warehouse,
            "schema_drift": settings,
            "alerts": AlertsResource(outbox_path=str(outbox)),
            "batch_files": BatchFilesResource(root=str(tmp_path / "storage")),
            "io_manager": LocalAssetValuesIOManager(base_dir=str(tmp_path / "storage")),
        },
    )
    job = definitions.resolve_job_def("batch_inputs")
    instance = DagsterInstance.ephemeral()
    cli_env = {
        "WALDINGER_DATA_DIR": str(data_dir),
        "WALDINGER_DATABASES": "RAW,WALDINGER",
        "WALDINGER_BASELINE": settings.baseline_path,
        "WALDINGER_SCHEMA_HISTORY_DIR": settings.history_dir,
    }

    class Gate:
        def run(self):
            return job.execute_in_process(
                partition_key=utc_today().isoformat(), instance=instance, raise_on_error=False
            )

        def sql(self, statement: str) -> None:
            with warehouse.get_connection() as connection:
                connection.cursor().execute(statement)

        def cli(self, *args: str):
            return waldinger_cli("drift", *args, env=cli_env)

        def alerts(self) -> list[dict]:
            return [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []

    return Gate()


def materialized(result) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def checks(result) -> dict[str, tuple[bool, str]]:
    return {e.check_name: (e.passed, e.severity.value) for e in result.get_asset_check_evaluations()}


BATCH_INPUT = "/".join(BATCH_INPUT_KEY)


def test_breaking_contract_drift_blocks_the_batch_input_until_accepted(gate) -> None:
    first = gate.run()
    assert first.success and BATCH_INPUT in materialized(first), "no baseline yet: say so, do not block"

    accepted = gate.cli("accept")
    assert accepted.returncode == 0, accepted.stderr
    clean = gate.cli("report", "--json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["changes"] == []

    gate.sql('ALTER TABLE "WALDINGER"."LLM"."PROMPTS" DROP COLUMN "USER_ID"')
    blocked = gate.run()
    assert not blocked.success
    assert BATCH_INPUT not in materialized(blocked)
    assert checks(blocked)[CONTRACT_CHECK] == (False, "ERROR")

    report = gate.cli("report", "--json")
    assert report.returncode == 1
    (change,) = json.loads(report.stdout)["changes"]
    assert (change["object"], change["change"], change["column"], change["severity"]) == (
        "WALDINGER.LLM.PROMPTS",
        "column_dropped",
        "USER_ID",
        "breaking",
    )

    (alert,) = gate.alerts()
    assert "WALDINGER.LLM.PROMPTS column USER_ID" in alert["payload"]["text"]
    assert alert["link"] == f"http://dagster.test/runs/{blocked.run_id}"
    assert not gate.run().success
    assert len(gate.alerts()) == 1, "the same drift is alerted once, not on every run"

    assert gate.cli("accept").returncode == 0
    through = gate.run()
    assert through.success and BATCH_INPUT in materialized(through)
    assert checks(through)[CONTRACT_CHECK] == (True, "ERROR")


def test_drift_outside_the_contract_warns_without_blocking(gate) -> None:
    assert gate.cli("accept").returncode == 0
    gate.sql('ALTER TABLE "RAW"."SALES"."ORDERS" DROP COLUMN "NOTE"')
    result = gate.run()
    assert result.success and BATCH_INPUT in materialized(result)
    assert checks(result) == {CONTRACT_CHECK: (True, "ERROR"), WAREHOUSE_CHECK: (False, "WARN")}
    (alert,) = gate.alerts()
    assert "outside the pipeline's contract" in alert["title"]


def test_accepting_one_object_leaves_the_others_pending(gate) -> None:
    assert gate.cli("accept").returncode == 0
    gate.sql('ALTER TABLE "RAW"."SALES"."ORDERS" ADD COLUMN "REGION" VARCHAR(10)')
    gate.sql('COMMENT ON TABLE "WALDINGER"."LLM"."PROMPTS" IS \'prompts for the daily batch\'')
    assert gate.cli("accept", "--objects", "RAW.SALES.ORDERS").returncode == 0
    pending = json.loads(gate.cli("report", "--json").stdout)["changes"]
    assert [(c["object"], c["change"], c["severity"]) for c in pending] == [
        ("WALDINGER.LLM.PROMPTS", "comment_changed", "cosmetic")
    ]
    unknown = gate.cli("accept", "--objects", "RAW.SALES.NOPE")
    assert unknown.returncode == 2 and "RAW.SALES.NOPE" in unknown.stderr


def test_report_errors_exit_2_with_a_message(gate, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = gate.cli("report", "--json", "--baseline", str(broken))
    assert result.returncode == 2 and "broken.json" in result.stderr and "Traceback" not in result.stderr
    missing_db = gate.cli("report", "--json", "--databases", "NO_SUCH_DB")
    assert missing_db.returncode == 2 and "NO_SUCH_DB" in missing_db.stderr
