"""Run state lives in Dagster's storage: asset values go through the run-scoped IO manager
(resources/asset_values.py), so each run reads the values of the run that produced them, and a value that one
process (e.g. CI, with its own data directory) materialized is what a run of another process loads.

The schema snapshot is the value that matters: the drift report of a run must compare THAT run's snapshot, not
whichever snapshot some other run wrote last.
"""

import gzip
import json
import subprocess
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from resources.warehouse import embedded_warehouse
from tests.helpers import REPO_ROOT, VENV_BIN, instance_env
from waldinger_assets.demo_warehouse.catalog import ColumnSpec, DemoCatalog, TableSpec
from waldinger_assets.demo_warehouse.prompts import utc_today
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.schema_drift.names import DRIFT_REPORT_KEY, SNAPSHOT_KEY

pytestmark = pytest.mark.slow

SIDE_TABLE = TableSpec("RAW", "SALES", "ORDERS", (ColumnSpec("ID", "NUMBER(38,0)", False),))


@pytest.fixture(scope="module")
def warehouse_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("values")
    warehouse = embedded_warehouse(root / "data")
    seed(warehouse.get_connection, today=utc_today(), catalog=DemoCatalog(tables=(SIDE_TABLE,), views=()))
    yield root
    from resources.embedded_warehouse import control

    control.stop(root / "data")


def test_concurrent_runs_each_compare_their_own_snapshot(warehouse_root):
    """Two runs in two processes at once, one instance and one IO storage: each report counts the objects of
    its own run's snapshot."""
    root = warehouse_root / "concurrent"
    home = root / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("")
    DagsterInstance.from_config(str(home)).dispose()  # create its storage once, before 4 processes open it
    selection = f"{'/'.join(SNAPSHOT_KEY)},{'/'.join(DRIFT_REPORT_KEY)}"

    def start(databases: str) -> subprocess.Popen:
        env = instance_env(
            root,
            DAGSTER_HOME=str(home),
            WALDINGER_DATA_DIR=str(warehouse_root / "data"),
            WALDINGER_IO_DIR=str(root / "io"),
            WALDINGER_DATABASES=databases,
            WALDINGER_SCHEMA_HISTORY_DIR=str(root / f"history-{databases}"),
        )
        command = [str(VENV_BIN / "dagster"), "asset", "materialize", "-m", "waldinger_assets.definitions"]
        return subprocess.Popen(
            [*command, "--select", selection],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    runs = [start("RAW"), start("RAW,WALDINGER"), start("RAW"), start("RAW,WALDINGER")]
    try:
        outputs = [run.communicate(timeout=300)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]

    instance = DagsterInstance.from_config(str(home))
    snapshots = {
        r.run_id: r.asset_materialization.metadata["objects"].value
        for r in instance.fetch_materializations(AssetKey(SNAPSHOT_KEY), limit=10).records
    }
    reports = {
        r.run_id: r.asset_materialization.metadata["objects"].value
        for r in instance.fetch_materializations(AssetKey(DRIFT_REPORT_KEY), limit=10).records
    }
    assert len(snapshots) == 4 and len(set(snapshots.values())) == 2, snapshots
    assert reports == snapshots, "every run's report compares the snapshot its own run took"


def test_a_value_ci_materialized_is_loaded_by_a_run_of_another_process(warehouse_root):
    """ "CI" (its own data directory) materializes the snapshot into the shared instance and IO storage; a later
    run of another process (another data directory, no warehouse at all) reports drift on exactly that value."""
    root = warehouse_root / "ci"
    shared = {"DAGSTER_HOME": str(root / "dagster_home"), "WALDINGER_IO_DIR": str(root / "shared-io")}
    (root / "dagster_home").mkdir(parents=True)
    (root / "dagster_home" / "dagster.yaml").write_text("")
    DagsterInstance.from_config(str(root / "dagster_home")).dispose()

    def materialize(select: str, data_dir: Path, **overrides: str) -> subprocess.CompletedProcess:
        env = instance_env(root, WALDINGER_DATA_DIR=str(data_dir), WALDINGER_DATABASES="RAW", **shared)
        env.update(overrides)
        return subprocess.run(
            [
                str(VENV_BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "waldinger_assets.definitions",
                "--select",
                select,
            ],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    ci = materialize("/".join(SNAPSHOT_KEY), warehouse_root / "data", WALDINGER_SCHEMA_HISTORY_DIR=str(root / "ci"))
    assert ci.returncode == 0, ci.stderr[-3000:]
    daemon_data = root / "daemon-data"
    daemon = materialize("/".join(DRIFT_REPORT_KEY), daemon_data, WALDINGER_SCHEMA_HISTORY_DIR=str(root / "daemon"))
    assert daemon.returncode == 0, daemon.stderr[-3000:]
    assert not (daemon_data / "warehouse").exists(), "the report needed no warehouse: it loaded CI's value"

    (report_file,) = sorted((root / "daemon").glob("*.report.json"))
    (snapshot_file,) = sorted((root / "ci").glob("*.snapshot.json.gz"))
    snapshot = json.loads(gzip.decompress(snapshot_file.read_bytes()))
    assert json.loads(report_file.read_text())["objects"] == len(snapshot["objects"])

    # Another IO storage does not hold CI's value: the run says so and what to do.
    elsewhere = materialize(
        "/".join(DRIFT_REPORT_KEY),
        daemon_data,
        WALDINGER_IO_DIR=str(root / "other-io"),
        WALDINGER_SCHEMA_HISTORY_DIR=str(root / "elsewhere"),
    )
    assert elsewhere.returncode != 0
    assert "is not in the IO storage" in elsewhere.stdout + elsewhere.stderr
