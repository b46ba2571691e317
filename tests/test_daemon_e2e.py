"""End to end with the real daemon: the webserver and `dagster-daemon run` on a temporary DAGSTER_HOME, the
project's own workspace.yaml, sensors ticking every 5 s. A breaking change to a contract table while new
prompts arrive: the schema change sensor launches a drift run, its blocking check fails, the alert lands in
the outbox, the batch input sensor holds the day and no batch output is written. `waldinger drift accept`:
the gate re-opens, the held day runs and its outputs land. Bounded in time; every process it started is
stopped, whatever happens."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from resources.background_process import free_port, get_json
from resources.model_registry.embedded import EmbeddedModelRegistry
from resources.model_source.tiny_model import TINY_MODEL_NAME, build_tiny_model
from tests.helpers import REPO_ROOT, VENV_BIN, instance_env, waldinger_cli
from waldinger_assets.demo_warehouse.catalog import DemoCatalog
from waldinger_assets.demo_warehouse.prompts import utc_today
from waldinger_assets.demo_warehouse.seed import seed

pytestmark = pytest.mark.slow
TODAY = utc_today()
# New prompts land on a day the seed left empty (it fills the last 14 days), so the batch the test waits for
# is three prompts, not a few hundred.
DAY = TODAY - dt.timedelta(days=20)
PROMPTS = '"WALDINGER"."LLM"."PROMPTS"'
DEADLINE_S = 240  # per phase; the whole test stays well under the suite's budget


class Deployment:
    """The webserver and the daemon of one temporary Dagster instance, and what the test reads from them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.home = root / "dagster_home"
        self.port = free_port()
        self.env = instance_env(
            root,
            WALDINGER_SENSOR_INTERVAL_S="5",
            WALDINGER_BATCH_START_DATE=(TODAY - dt.timedelta(days=30)).isoformat(),
            WALDINGER_DAGSTER_URL=f"http://127.0.0.1:{self.port}",
        )
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        # The model version sensor would deploy the endpoint (CPU this 2-core machine needs for the runs under
        # test); it has its own tests. Stopped the way an operator would, before the daemon starts.
        stopped = subprocess.run(
            [str(VENV_BIN / "dagster"), "sensor", "stop", "model_version_sensor", "-w", "workspace.yaml"],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        commands = {
            "webserver": [VENV_BIN / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", self.port],
            "daemon": [VENV_BIN / "dagster-daemon", "run", "-w", "workspace.yaml"],
        }
        for name, command in commands.items():
            log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            self.processes.append(
                subprocess.Popen(
                    [str(part) for part in command],
                    cwd=REPO_ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        self.wait_for("the webserver to answer", lambda: get_json(f"http://127.0.0.1:{self.port}/server_info"))

    def stop(self) -> None:
        """Stops the webserver, the daemon, their code servers and run workers, the endpoint and warehouse."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for process in psutil.process_iter():  # run workers and code servers may have left the process group
            try:
                if process.pid != os.getpid() and process.environ().get("DAGSTER_HOME") == str(self.home):
                    process.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        from resources.embedded_warehouse import control

        control.stop(self.data_dir)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} (tail) ---\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.root.glob("*.log"))
        )

    def wait_for(self, what: str, probe: Callable[[], object], deadline_s: float = DEADLINE_S):
        started = time.monotonic()
        while time.monotonic() - started < deadline_s:
            for process in self.processes:
                assert process.poll() is None, f"a Dagster process exited while waiting for {what}\n{self.logs()}"
            value = probe()
            if value:
                print(f"{time.monotonic() - started:5.1f} s: {what}")  # shown when the test fails: where time went
                return value
            time.sleep(1)
        pytest.fail(f"gave up after {deadline_s} s waiting for {what}\n{self.logs()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]

    def runs(self) -> list[dict]:
        data = self.graphql("{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }")
        return [
            {**run, "tags": {tag["key"]: tag["value"] for tag in run["tags"]}} for run in data["runsOrError"]["results"]
        ]

    def runs_by(self, trigger: str, status: str | None = None) -> list[dict]:
        return [
            run
            for run in self.runs()
            if run["tags"].get("waldinger/trigger") == trigger and (status is None or run["status"] == status)
        ]

    def sensor_cursor(self, name: str) -> dict:
        data = self.graphql(
            """query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 ... on Sensor { sensorState { typeSpecificData { ... on SensorData { lastCursor } } } } } }""",
            {
                "selector": {
                    "repositoryLocationName": "waldinger",
                    "repositoryName": "__repository__",
                    "sensorName": name,
                }
            },
        )
        raw = data["sensorOrError"]["sensorState"]["typeSpecificData"]["lastCursor"]
        return json.loads(raw) if raw else {}

    def sql(self, statement: str, *params):
        from resources.warehouse import embedded_warehouse

        with embedded_warehouse(self.data_dir).get_connection() as connection:
            cursor = connection.cursor()
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None

    def outputs(self, day: dt.date) -> int:
        return self.sql('SELECT COUNT(*) FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s', day)[0][0]

    def alerts(self) -> list[dict]:
        outbox = self.data_dir / "alerts" / "outbox.jsonl"
        return [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    from resources.warehouse import embedded_warehouse

    deployment = Deployment(tmp_path)
    try:
        seed(embedded_warehouse(deployment.data_dir).get_connection, today=TODAY, catalog=DemoCatalog((), ()))
        registry = EmbeddedModelRegistry(deployment.data_dir / "registry")
        version, _ = registry.register(
            TINY_MODEL_NAME, build_tiny_model(tmp_path / "tiny"), tags={"artifact_sha256": ""}, properties={}
        )
        registry.promote(TINY_MODEL_NAME, version.version)
        accepted = waldinger_cli("drift", "accept", env=deployment.env)
        assert accepted.returncode == 0, accepted.stderr
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


def test_the_daemon_holds_the_batch_on_drift_and_runs_it_once_accepted(deployment: Deployment) -> None:
    # Start-up: the first ticks check the schema (gate passes) and record today's input as it is.
    deployment.wait_for("the first drift run", lambda: deployment.runs_by("schema_change_sensor", "SUCCESS"))
    deployment.wait_for(
        "the batch input sensor's first tick", lambda: "seen" in deployment.sensor_cursor("batch_input_sensor")
    )
    assert deployment.outputs(DAY) == 0

    # A breaking change to a contract table, and new prompts for a day.
    deployment.sql(f'ALTER TABLE {PROMPTS} RENAME COLUMN "USER_ID" TO "USER_KEY"')
    for index in range(3):
        deployment.sql(
            f'INSERT INTO {PROMPTS} ("PROMPT_ID", "PROMPT_DATE", "PROMPT", "CREATED_AT") VALUES (%s, %s, %s, %s)',
            f"e2e-{index}",
            DAY,
            f"Write a haiku about ticket {index}.",
            dt.datetime.combine(DAY, dt.time(9)),
        )
    failed = deployment.wait_for(
        "the sensor-launched drift run to fail",
        lambda: [
            r
            for r in deployment.runs_by("schema_change_sensor", "FAILURE")
            if "WALDINGER" in r["tags"]["waldinger/changed"]
        ],
    )
    alerts = deployment.wait_for("the drift alert", deployment.alerts)
    # The first run to meet the drift alerts (the sensor's drift run, or a batch run the input sensor started
    # before it); the same drift is not alerted twice.
    failed_runs = {run["runId"] for run in deployment.runs() if run["status"] == "FAILURE"}
    (alert,) = alerts
    assert alert["link"].rsplit("/runs/", 1)[1] in failed_runs, (alert, failed)
    assert "WALDINGER.LLM.PROMPTS" in alerts[-1]["payload"]["text"]
    deployment.wait_for(
        "the batch input sensor to hold the day",
        lambda: DAY.isoformat() in deployment.sensor_cursor("batch_input_sensor").get("held", {}),
    )
    time.sleep(8)  # more ticks of every sensor: still nothing may write outputs
    assert deployment.outputs(DAY) == 0, "no batch output while the drift is unaccepted"
    assert not deployment.runs_by("batch_input_sensor", "SUCCESS")

    # Accept the change: the baseline moves, the gate re-opens, the held day runs.
    accepted = waldinger_cli("drift", "accept", env=deployment.env)
    assert accepted.returncode == 0, accepted.stderr
    (through,) = deployment.wait_for(
        "the held day's batch run to succeed", lambda: deployment.runs_by("batch_input_sensor", "SUCCESS")
    )
    assert through["tags"]["dagster/partition"] == DAY.isoformat()
    assert deployment.outputs(DAY) == 3
    assert deployment.runs_by("schema_change_sensor", "SUCCESS")[0]["tags"]["waldinger/changed"] == "baseline"
