"""The GitHub Actions workflows and the one command they share: each workflow parses and runs on the triggers
the README describes, every secret and variable they read is in README's CI/CD table, materialize.yml runs
.github/scripts/materialize.sh and nothing else, and the script itself materializes against the embedded
default, fails when the drift gate blocks, and refuses bad input with exit 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.dependency_scan import locked_versions
from tests.helpers import REPO_ROOT, VENV_BIN, waldinger_cli
from waldinger_assets.batch.assets import BATCH_INPUT_KEY, BATCH_OUTPUTS_KEY
from waldinger_assets.schema_drift.assets import CONTRACT_CHECK, DRIFT_REPORT_KEY, SNAPSHOT_KEY
from waldinger_assets.serving.assets import BATCH_DEPLOYMENT_KEY

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SCRIPT = REPO_ROOT / ".github" / "scripts" / "materialize.sh"
SCRIPT_PATH = ".github/scripts/materialize.sh"


def selection(*keys) -> str:
    return ",".join("/".join(key) for key in keys)


DRIFT_GATE = selection(SNAPSHOT_KEY, DRIFT_REPORT_KEY)
DAILY_BATCH = selection(SNAPSHOT_KEY, DRIFT_REPORT_KEY, BATCH_DEPLOYMENT_KEY, BATCH_INPUT_KEY, BATCH_OUTPUTS_KEY)


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(parsed: dict) -> dict:
    # PyYAML (YAML 1.1) reads the bare key `on` as the boolean True.
    return parsed["on"] if "on" in parsed else parsed[True]


def steps(parsed: dict, job: str) -> list[dict]:
    return parsed["jobs"][job]["steps"]


def runs(parsed: dict) -> list[str]:
    return [step.get("run", "") for job in parsed["jobs"].values() for step in job["steps"]]


def test_every_workflow_parses() -> None:
    names = sorted(path.name for path in WORKFLOWS.glob("*.yml"))
    assert {"ci.yml", "infra.yml", "materialize.yml"} <= set(names)
    for name in names:
        parsed = workflow(name)
        assert parsed["jobs"] and triggers(parsed), name
        for job in parsed["jobs"].values():
            assert job["runs-on"] and job["steps"] and job["timeout-minutes"], name


def test_ci_runs_make_test_and_validate_on_pull_requests_and_main() -> None:
    ci = workflow("ci.yml")
    on = triggers(ci)
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    (job,) = ci["jobs"].values()
    assert job["timeout-minutes"] == 90
    setup = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11"
    assert [run for run in runs(ci) if run] == ["make test", "make validate"]


def test_materialize_is_dispatched_by_hand_or_by_a_merged_prod_baseline() -> None:
    materialize = workflow("materialize.yml")
    on = triggers(materialize)
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"select", "partition", "partition_range"}
    assert inputs["select"]["default"] == DAILY_BATCH
    assert on["push"] == {"branches": ["main"], "paths": ["schema_baseline/prod.json"]}
    assert materialize["permissions"] == {"id-token": "write", "contents": "read"}

    jobs = materialize["jobs"]
    assert set(jobs) == {"materialize", "drift_gate"}
    assert "workflow_dispatch" in jobs["materialize"]["if"] and "push" in jobs["drift_gate"]["if"]
    for job in jobs.values():
        assert job["environment"] == "production"
        assert job["env"]["WALDINGER_ENV"] == "prod"
        uses = [step.get("uses", "") for step in job["steps"]]
        assert any(use.startswith("azure/login@v2") for use in uses)
        assert any(".github/dagster-prod.yaml" in step.get("run", "") for step in job["steps"])
    selects = {
        name: [s["env"]["SELECT"] for s in job["steps"] if "SELECT" in s.get("env", {})] for name, job in jobs.items()
    }
    assert selects == {"materialize": ["${{ inputs.select }}"], "drift_gate": [DRIFT_GATE]}


def test_the_default_selection_is_the_daily_batch_job() -> None:
    from dagster import AssetSelection

    from waldinger_assets.batch.jobs import daily_batch_job
    from waldinger_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assert AssetSelection.from_coercible(DAILY_BATCH.split(",")).resolve(graph) == daily_batch_job.selection.resolve(
        graph
    )


def test_the_materialize_workflow_runs_the_script_and_nothing_else() -> None:
    materialize = workflow("materialize.yml")
    for name in materialize["jobs"]:
        commands = [step["run"].strip() for step in steps(materialize, name) if "materialize" in step.get("run", "")]
        assert commands == [SCRIPT_PATH], name
    assert not [run for run in runs(materialize) if re.search(r"(?:^|[\s/])dagster\s", run)], "no other command"
    assert os.access(SCRIPT, os.X_OK)
    assert "set -euo pipefail" in SCRIPT.read_text()


def test_ci_records_runs_in_the_prod_instance_on_postgres(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    instance_yaml = REPO_ROOT / ".github" / "dagster-prod.yaml"
    assert yaml.safe_load(instance_yaml.read_text())["storage"] == {
        "postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}
    }
    shutil.copy(instance_yaml, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # validates against the instance schema
    assert "postgres" in config["storage"]
    dependencies = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"dagster-postgres>=0.29,<0.30"' in dependencies
    assert locked_versions()["dagster-postgres"] == "0.29.27"


def test_infra_previews_pull_requests_and_applies_on_main() -> None:
    infra = workflow("infra.yml")
    on = triggers(infra)
    assert on["pull_request"]["paths"] == ["infra_pulumi/**"]
    assert on["push"]["branches"] == ["main"]
    assert infra["permissions"]["id-token"] == "write"
    pulumi = {
        name: next(step["with"] for step in job["steps"] if step.get("uses") == "pulumi/actions@v6")
        for name, job in infra["jobs"].items()
    }
    assert pulumi["preview"]["command"] == "preview" and pulumi["preview"]["comment-on-pr"] is True
    assert pulumi["up"]["command"] == "up"
    for name, action in pulumi.items():
        assert action["work-dir"] == "infra_pulumi", name
        assert action["stack-name"] == "${{ vars.PULUMI_STACK || 'prod' }}", name
        env = infra["jobs"][name]["env"]
        assert env["ARM_USE_OIDC"] == "true" and {"ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID"} <= set(env)
        assert any("make install" in step.get("run", "") for step in infra["jobs"][name]["steps"]), name
    assert "pull_request" in infra["jobs"]["preview"]["if"] and "push" in infra["jobs"]["up"]["if"]
    assert infra["jobs"]["up"]["environment"] == "production"


def readme_ci_tables() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"^## CI/CD: GitHub Actions\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert match, "README has no '## CI/CD: GitHub Actions' section"
    return "\n".join(line for line in match.group(1).splitlines() if line.startswith("|"))


def test_every_secret_and_variable_the_workflows_read_is_documented() -> None:
    text = "\n".join(path.read_text() for path in sorted(WORKFLOWS.glob("*.yml")))
    referenced = set(re.findall(r"\b(?:secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)", text))
    assert referenced, "the workflows read no secret or variable?"
    tables = readme_ci_tables()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", tables))
    missing = sorted(referenced - documented)
    assert not missing, f"README's CI/CD table lacks: {', '.join(missing)}"
    named_in_first_column = {
        name for line in tables.splitlines() for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    stale = sorted(named_in_first_column - referenced)
    assert not stale, f"README's CI/CD table names settings no workflow reads: {', '.join(stale)}"


def test_make_materialize_runs_the_script() -> None:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    dry = subprocess.run(
        ["make", "-n", "materialize", "SELECT=waldinger/batch/batch_input"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert SCRIPT_PATH in dry.stdout


def script_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SELECT", "PARTITION", "PARTITION_RANGE", "DAGSTER_BIN"}}
    return {**env, **settings}


def run_script(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT)], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "SELECT"),
        ({"SELECT": "  "}, "SELECT"),
        (
            {"SELECT": DRIFT_GATE, "PARTITION": "2026-11-01", "PARTITION_RANGE": "2026-11-01...2026-11-02"},
            "PARTITION_RANGE",
        ),
        ({"SELECT": DRIFT_GATE, "PARTITION": "11/01/2026"}, "PARTITION"),
        ({"SELECT": DRIFT_GATE, "PARTITION_RANGE": "2026-11-01..2026-11-02"}, "PARTITION_RANGE"),
        ({"SELECT": DRIFT_GATE, "PARTITION_RANGE": "2026-11-07...2026-11-01"}, "PARTITION_RANGE"),
        ({"SELECT": DRIFT_GATE, "DAGSTER_BIN": "/nonexistent/dagster"}, "DAGSTER_BIN"),
    ],
)
def test_the_script_refuses_bad_input_with_exit_2(settings: dict[str, str], named: str, tmp_path: Path) -> None:
    result = run_script(script_env(DAGSTER_HOME=str(tmp_path / "home"), **settings))
    assert result.returncode == 2, result.stdout + result.stderr
    assert named in result.stderr
    assert not (tmp_path / "home").exists(), "nothing runs on bad input"


@pytest.mark.parametrize(
    ("settings", "arguments"),
    [
        ({}, []),
        ({"PARTITION": "2026-11-07"}, ["--partition", "2026-11-07"]),
        ({"PARTITION_RANGE": "2026-11-01...2026-11-07"}, ["--partition-range", "2026-11-01...2026-11-07"]),
    ],
)
def test_the_script_passes_its_inputs_to_dagster_and_prints_no_secret(
    settings: dict[str, str], arguments: list[str], tmp_path: Path
) -> None:
    fake_dagster = tmp_path / "dagster"
    fake_dagster.write_text('#!/usr/bin/env bash\nprintf "ARG:%s\\n" "$@"\n')
    fake_dagster.chmod(0o755)
    secret = "sentinel-secret-value-1234"
    env = script_env(
        SELECT=DAILY_BATCH,
        DAGSTER_BIN=str(fake_dagster),
        DAGSTER_HOME=str(tmp_path / "home"),
        SNOWFLAKE_PRIVATE_KEY=secret,
        WALDINGER_ALERT_WEBHOOK_URL=f"https://hooks.example/{secret}",
        DAGSTER_POSTGRES_URL=f"postgresql://u:{secret}@db/dagster",
        **settings,
    )
    result = run_script(env)
    assert result.returncode == 0, result.stderr
    passed = [line.removeprefix("ARG:") for line in result.stdout.splitlines() if line.startswith("ARG:")]
    assert passed == ["asset", "materialize", "-m", "waldinger_assets.definitions", "--select", DAILY_BATCH, *arguments]
    assert "asset materialize" in result.stdout, "it prints what it runs"
    assert secret not in result.stdout + result.stderr
    assert (tmp_path / "home" / "dagster.yaml").exists()


@pytest.mark.slow
def test_the_script_materializes_locally_and_fails_when_the_drift_gate_blocks(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.demo_warehouse.catalog import DemoCatalog
    from waldinger_assets.demo_warehouse.prompts import utc_today
    from waldinger_assets.demo_warehouse.seed import seed

    today = utc_today()
    warehouse = embedded_warehouse(data_dir)
    seed(warehouse.get_connection, today=today, catalog=DemoCatalog(tables=(), views=()))
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").touch()
    settings = {
        "WALDINGER_DATA_DIR": str(data_dir),
        "WALDINGER_DATABASES": "WALDINGER",
        "WALDINGER_BASELINE": str(tmp_path / "baseline.json"),
        "WALDINGER_SCHEMA_HISTORY_DIR": str(tmp_path / "history"),
        "DAGSTER_HOME": str(dagster_home),
    }
    env = script_env(
        SELECT=f"{DRIFT_GATE},{'/'.join(BATCH_INPUT_KEY)}",
        PARTITION=today.isoformat(),
        DAGSTER_BIN=str(VENV_BIN / "dagster"),
        **settings,
    )

    first = run_script(env, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-4000:]
    assert f"--partition {today.isoformat()}" in first.stdout
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    from resources import environment

    # The day's validated prompts are an asset value, one file per run that produced it.
    values = environment.asset_value_storage().directory.joinpath(*BATCH_INPUT_KEY, today.isoformat())
    written = sorted(values.iterdir()) if values.is_dir() else []
    assert len(written) == 1 and written[0].stat().st_size > 0, f"no validated prompts under {values}"

    accepted = waldinger_cli("drift", "accept", env=settings)
    assert accepted.returncode == 0, accepted.stderr
    with warehouse.get_connection() as connection:
        connection.cursor().execute('ALTER TABLE "WALDINGER"."LLM"."PROMPTS" DROP COLUMN "USER_ID"')

    blocked = run_script(env, timeout=300)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode not in (0, 2), output[-4000:]
    assert CONTRACT_CHECK in output, "the blocking check failed in the run"
    assert sorted(values.iterdir()) == written, "a blocked run writes no batch input"
