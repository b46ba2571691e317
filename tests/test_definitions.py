"""The Definitions object: loads through the CLI, stays light, and its graph is reviewed as a snapshot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import materialize

from tests.helpers import REPO_ROOT, VENV_BIN

HEAVY_MODULES = ("torch", "transformers", "vllm", "azure", "pulumi", "pulumi_azure_native")


def test_loading_definitions_imports_no_heavy_module() -> None:
    probe = (
        "import json, sys; import waldinger_assets.definitions; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_dagster_definitions_validate_passes() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful for code location waldinger" in result.stdout + result.stderr


def test_definitions_fail_to_load_in_prod_without_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import waldinger_assets.definitions"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "WALDINGER_ENV": "prod"},
    )
    assert result.returncode != 0
    assert "SettingsError" in result.stderr and "SNOWFLAKE_ACCOUNT" in result.stderr


def graph_snapshot() -> dict:
    from waldinger_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "materializable": node.is_materializable,
            "automation": node.automation_condition.get_label() if node.automation_condition else None,
        }
    repository = defs.get_repository_def()
    return {
        "assets": assets,
        "checks": sorted(key.to_user_string() for key in graph.asset_check_keys),
        "jobs": sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")),
        "schedules": {
            schedule.name: {"cron": schedule.cron_schedule, "job": schedule.job_name}
            for schedule in sorted(repository.schedule_defs, key=lambda s: s.name)
        },
        "sensors": {
            sensor.name: {"jobs": sorted(job.name for job in sensor.jobs) if sensor.has_jobs else []}
            for sensor in sorted(repository.sensor_defs, key=lambda s: s.name)
        },
    }


def test_graph_matches_the_reviewed_snapshot() -> None:
    """A change to the graph shows up in review: update tests/snapshots/definitions.json with it
    (`python -m tests.test_definitions` prints the current graph)."""
    expected = json.loads((Path(__file__).parent / "snapshots" / "definitions.json").read_text())
    assert graph_snapshot() == expected


@pytest.mark.slow
def test_snapshot_and_drift_report_materialize_on_the_demo_warehouse(seeded_data_dir: Path, tmp_path: Path) -> None:
    from resources.alerts import AlertsResource
    from resources.schema_drift import SchemaDriftSettings
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.demo_warehouse.catalog import build_catalog
    from waldinger_assets.schema_drift.assets import drift_report, schema_snapshot

    settings = SchemaDriftSettings(
        databases=["RAW", "ANALYTICS", "WALDINGER"],
        contract_objects=["WALDINGER.LLM.PROMPTS"],
        baseline_path=str(tmp_path / "baseline.json"),
        history_dir=str(tmp_path / "history"),
        dagster_ui_url="http://ui",
    )
    result = materialize(
        [schema_snapshot, drift_report],
        resources={
            "warehouse": embedded_warehouse(seeded_data_dir),
            "schema_drift": settings,
            "alerts": AlertsResource(outbox_path=str(tmp_path / "outbox.jsonl")),
        },
    )
    assert result.success
    snapshot_metadata = result.asset_materializations_for_node(schema_snapshot.op.name)[0].metadata
    assert snapshot_metadata["metadata_queries"].value == 12
    assert (
        snapshot_metadata["tables"].value + snapshot_metadata["views"].value == build_catalog().object_count + 3
    )  # batch input + output, labeled examples
    report_metadata = result.asset_materializations_for_node(drift_report.op.name)[0].metadata
    assert report_metadata["baseline"].value.startswith("missing")
    assert report_metadata["changes"].value == 0
    assert len(list((tmp_path / "history").glob("*.snapshot.json.gz"))) == 1


if __name__ == "__main__":
    print(json.dumps(graph_snapshot(), indent=2, sort_keys=True))
