"""No secret ever leaves the environment variable it was given in.

The demo runs the way `make demo` runs it (`waldinger warehouse start`, a seed, `waldinger drift accept`,
`dagster asset materialize --select '*' --partition <today>`), as subprocesses on a temporary DAGSTER_HOME and
data directory, with a fake, unique value for every secret the project knows. The alert webhook points at a
local receiver, and a breaking change outside the pipeline's contract makes the drift alert fire (so the
webhook URL is really used while the demo still succeeds); the endpoint requires the API key, so the smoke test
really sends it. Then every place a secret could land is scanned for the values, and any hit fails the test
with its exact place: the commands' stdout/stderr; every file under DAGSTER_HOME and the data directory, as raw
bytes (sqlite event log and run databases, compute logs, endpoint and warehouse logs, outbox, schema history,
pickled asset values, model files), gzip files decompressed too; the Dagster event log through the API (every
event of every run, each metadata entry named, run configs and tags); the rows the pipeline wrote to the
warehouse, read back through SQL (DuckDB may compress strings when it checkpoints, so its files alone could
hide one); the command lines of the servers left running. Nothing is skipped, model weights included.

Two cuts keep it near a minute and a half: the seed is the demo's minus its 3,000 generated tables (the
pipeline's own tables and prompts only; the secrets go nowhere near the seed, and the full one takes another
minute and a half), and today's batch is a dozen prompts rather than ~280. Every code path the demo takes runs.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from tests.helpers import REPO_ROOT, VENV_BIN
from waldinger_assets.demo_warehouse.catalog import DemoCatalog
from waldinger_assets.demo_warehouse.prompts import utc_today

pytestmark = pytest.mark.slow

TODAY = utc_today()
# A table outside the pipeline's contract: dropping its column is breaking drift that alerts but blocks nothing.
PROBE_TABLE = ("WALDINGER", "FEATURES", "LEAK_PROBE")
PROMPTS = '"WALDINGER"."LLM"."PROMPTS"'
TODAY_PROMPTS = 12
COMMAND_TIMEOUT_S = 300
# The whole demo graph, training and evaluation included, on 2 cores shared with the other xdist worker.
MATERIALIZE_TIMEOUT_S = 1200
CONTEXT_BYTES = 40


def fake_secrets(webhook_port: int) -> tuple[dict[str, str], dict[str, str]]:
    """The environment (variable -> fake value) and, for the scan, each value's unique core -> its variable.
    The cores are lower-case hex behind a fixed prefix, so JSON, URL or shell quoting leaves them intact."""
    cores = {
        name: f"leakprobe{secrets.token_hex(12)}"
        for name in (
            "WALDINGER_SERVING_API_KEY",
            "WALDINGER_ALERT_WEBHOOK_URL",
            "SNOWFLAKE_PASSWORD",
            "SNOWFLAKE_PRIVATE_KEY",
            "SNOWFLAKE_PRIVATE_KEY_PASSWORD",
            "AZURE_CLIENT_SECRET",
            "DAGSTER_POSTGRES_URL",
        )
    }
    values = {
        "WALDINGER_SERVING_API_KEY": f"sk-{cores['WALDINGER_SERVING_API_KEY']}",
        "WALDINGER_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{webhook_port}/hooks/{cores['WALDINGER_ALERT_WEBHOOK_URL']}",
        "SNOWFLAKE_PASSWORD": cores["SNOWFLAKE_PASSWORD"],
        "SNOWFLAKE_PRIVATE_KEY": (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
            f"{cores['SNOWFLAKE_PRIVATE_KEY']}\n"
            "-----END ENCRYPTED PRIVATE KEY-----\n"
        ),
        "SNOWFLAKE_PRIVATE_KEY_PASSWORD": cores["SNOWFLAKE_PRIVATE_KEY_PASSWORD"],
        "AZURE_CLIENT_SECRET": cores["AZURE_CLIENT_SECRET"],
        "DAGSTER_POSTGRES_URL": f"postgresql://dagster:{cores['DAGSTER_POSTGRES_URL']}@db.invalid:5432/dagster",
    }
    return values, {core: name for name, core in cores.items()}


def find_secrets(data: bytes, cores: dict[str, str], where: str) -> list[str]:
    """One line per secret found in `data`: where, which variable, and the bytes around it (value masked)."""
    hits = []
    for core, name in cores.items():
        at = data.find(core.encode())
        if at < 0:
            continue
        count = data.count(core.encode())
        context = data[max(0, at - CONTEXT_BYTES) : at + len(core) + CONTEXT_BYTES]
        shown = context.replace(core.encode(), f"<{name}>".encode()).decode("utf-8", "replace")
        hits.append(f"{where}: {name} ({count}x) ...{shown!r}...")
    return hits


def scan_file(path: Path, cores: dict[str, str], root: Path) -> list[str]:
    data = path.read_bytes()
    where = str(path.relative_to(root))
    hits = find_secrets(data, cores, where)
    if data[:2] == b"\x1f\x8b":  # gzip (schema history snapshots): its text is compressed, so scan it unpacked
        try:
            hits += find_secrets(gzip.decompress(data), cores, f"{where} (unpacked)")
        except (OSError, EOFError, zlib.error):
            hits.append(f"{where}: looks like gzip but does not unpack; cannot be scanned")
    return hits


class WebhookReceiver:
    """A Teams/Slack-style incoming webhook on a free local port, recording what it is sent."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"1")

            def log_message(self, *args) -> None:  # keep the test's output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Demo:
    """The demo's commands on one temporary instance, their outputs kept for the scan."""

    root: Path
    secret_env: dict[str, str]
    outputs: list[tuple[str, str, str]] = field(default_factory=list)  # (command, stdout, stderr)

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.secret_env,
            "DAGSTER_HOME": str(self.home),
            "WALDINGER_DATA_DIR": str(self.data_dir),
            "WALDINGER_BASELINE": str(self.root / "baseline.json"),  # never the repo's schema_baseline/local.json
            # Every step of the demo runs, training and its MLflow run included, but briefly: the scan is about
            # what reaches logs and metadata, not the model's quality (tests/training); the gate lets it through.
            "WALDINGER_TRAINING_STEPS": "300",
            "WALDINGER_PROMOTION_MIN_EXACT_MATCH": "0",
        }

    def run(self, *command: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Runs a command in its own process group, so a timeout stops everything it started."""
        process = subprocess.Popen(
            [str(VENV_BIN / command[0]), *command[1:]],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        started = time.monotonic()
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            print(f"{time.monotonic() - started:5.1f} s: {' '.join(command)}")  # shown on failure: where time went
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            self.outputs.append((" ".join(command), stdout, stderr))
            pytest.fail(f"`{' '.join(command)}` did not finish in {timeout:.0f}s\n{stdout[-3000:]}\n{stderr[-3000:]}")
        self.outputs.append((" ".join(command), stdout, stderr))
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def run_ok(self, *command: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        finished = self.run(*command, timeout=timeout)
        assert finished.returncode == 0, f"`{' '.join(command)}` failed\n{finished.stdout[-3000:]}{finished.stderr}"
        return finished.stdout

    def sql(self, statement: str, *params) -> list[tuple]:
        from resources.warehouse import embedded_warehouse

        with embedded_warehouse(self.data_dir, autostart=False).get_connection() as connection:
            cursor = connection.cursor()
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def stop(self) -> None:
        """`make stop`, then anything of this instance still running (a command that failed half-way)."""
        self.run("waldinger", "serve", "stop", timeout=60)
        self.run("waldinger", "warehouse", "stop", timeout=60)
        from resources.embedded_warehouse import control
        from resources.serving import local_endpoint

        local_endpoint.stop(self.data_dir)
        control.stop(self.data_dir)
        for process in psutil.process_iter():
            try:
                if process.pid != os.getpid() and process.environ().get("DAGSTER_HOME") == str(self.home):
                    process.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue


def bearer_status(url: str, api_key: str | None) -> int:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


def run_the_demo(demo: Demo) -> dict:
    """The demo, plus what can only be checked while its servers run. Returns the endpoint's status."""
    from resources.snowflake_sql import qualified_name
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.demo_warehouse.seed import seed

    demo.home.mkdir(parents=True)
    (demo.home / "dagster.yaml").touch()  # as `make demo` leaves it
    demo.run_ok("waldinger", "warehouse", "start")
    seed(embedded_warehouse(demo.data_dir).get_connection, today=TODAY, catalog=DemoCatalog((), ()))
    # Today's batch: a dozen of the seeded prompts rather than ~280 (half a minute of CPU on this machine).
    demo.sql(
        f'DELETE FROM {PROMPTS} WHERE "PROMPT_DATE" = %s AND "PROMPT_ID" NOT IN '
        f'(SELECT "PROMPT_ID" FROM {PROMPTS} WHERE "PROMPT_DATE" = %s ORDER BY "PROMPT_ID" LIMIT %s)',
        TODAY,
        TODAY,
        TODAY_PROMPTS,
    )
    probe = qualified_name(*PROBE_TABLE)
    demo.sql(f'CREATE TABLE {probe} ("ID" NUMBER(38,0), "NOTE" VARCHAR(64))')
    demo.run_ok("waldinger", "drift", "accept")
    demo.sql(f'ALTER TABLE {probe} DROP COLUMN "NOTE"')
    demo.run_ok(
        "dagster",
        "asset",
        "materialize",
        "-m",
        "waldinger_assets.definitions",
        "--select",
        "*",
        "--partition",
        TODAY.isoformat(),
        timeout=MATERIALIZE_TIMEOUT_S,
    )
    return json.loads(demo.run_ok("waldinger", "serve", "status", "--json"))


def scan_event_log(home: Path, cores: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], dict]:
    """Every run, and every event of every run, as Dagster's API returns them. Returns the hits and what was
    read (so the test can tell the scan covered the demo)."""
    from dagster import DagsterEventType, DagsterInstance, serialize_value

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    hits: list[str] = []
    seen = {"runs": [], "events": 0, "materialized": {}}
    with DagsterInstance.get() as instance:
        for run in instance.get_runs():
            where = f"run {run.run_id}"
            seen["runs"].append((run.job_name, run.status.value))
            hits += find_secrets(serialize_value(run).encode(), cores, f"{where} (run config, tags, origin)")
            for index, entry in enumerate(instance.all_logs(run.run_id)):
                seen["events"] += 1
                kind = entry.dagster_event_type.value if entry.dagster_event_type else "log message"
                at = f"{where} event #{index} {kind} step {entry.step_key}"
                hits += find_secrets((entry.user_message or "").encode(), cores, f"{at} message")
                event = entry.dagster_event
                if event is not None and event.event_type is DagsterEventType.ASSET_MATERIALIZATION:
                    materialization = event.step_materialization_data.materialization
                    asset = materialization.asset_key.to_user_string()
                    seen["materialized"][asset] = materialization.metadata
                    for key, value in materialization.metadata.items():
                        hits += find_secrets(serialize_value(value).encode(), cores, f"{at} {asset} metadata[{key}]")
                hits += find_secrets(serialize_value(entry).encode(), cores, f"{at} (whole record)")
        for record in instance.get_asset_records():
            asset = record.asset_entry.asset_key.to_user_string()
            hits += find_secrets(repr(record).encode(), cores, f"asset record {asset}")  # not serdes-whitelisted
    return hits, seen


def scanner_finds_a_planted_secret(tmp_path: Path, cores: dict[str, str]) -> bool:
    core = next(iter(cores))
    sample = tmp_path / "sample.json.gz"
    sample.write_bytes(gzip.compress(f'{{"token": "{core}"}}'.encode()))
    found = scan_file(sample, cores, tmp_path)
    sample.unlink()
    plain = find_secrets(f"Authorization: Bearer sk-{core}".encode(), cores, "sample")
    return len(found) == 1 and "(unpacked)" in found[0] and len(plain) == 1


def _warehouse_pid(demo: Demo) -> int:
    return json.loads(demo.run_ok("waldinger", "warehouse", "status", "--json"))["pid"]


def test_the_demo_leaks_no_secret(tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_env, cores = fake_secrets(receiver.port)
    assert scanner_finds_a_planted_secret(tmp_path, cores), "the scanner itself works, gzip included"
    demo = Demo(tmp_path / "demo", secret_env)
    api_key = secret_env["WALDINGER_SERVING_API_KEY"]
    try:
        endpoint = run_the_demo(demo)
        # The endpoint enforced the key: refused without it, served with it (the smoke test sent it).
        assert endpoint["running"], endpoint
        assert bearer_status(f"{endpoint['url']}/models", None) == 401
        assert bearer_status(f"{endpoint['url']}/models", "sk-wrong") == 401
        assert bearer_status(f"{endpoint['url']}/models", api_key) == 200
        server = psutil.Process(endpoint["pid"])
        assert server.environ().get("WALDINGER_SERVING_API_KEY") == api_key, "the key reached it by environment"
        leaks = [
            hit
            for label, pid in (("endpoint", endpoint["pid"]), ("warehouse", _warehouse_pid(demo)))
            for hit in find_secrets(" ".join(psutil.Process(pid).cmdline()).encode(), cores, f"{label} command line")
        ]
        outputs = demo.sql('SELECT * FROM "WALDINGER"."LLM"."BATCH_OUTPUTS"')
        assert len(outputs) == TODAY_PROMPTS, "the batch wrote today's outputs"
        leaks += find_secrets(repr(outputs).encode(), cores, "rows of WALDINGER.LLM.BATCH_OUTPUTS")
    finally:
        demo.stop()

    # The webhook was really called, at its secret URL, with the drift alert.
    ((path, payload),) = receiver.received
    assert path == "/hooks/" + secret_env["WALDINGER_ALERT_WEBHOOK_URL"].rsplit("/", 1)[1]
    assert "LEAK_PROBE" in payload["text"] and "Breaking schema drift" in payload["title"]
    assert not (demo.data_dir / "alerts" / "outbox.jsonl").exists(), "delivered, so nothing in the outbox"

    for command, stdout, stderr in demo.outputs:
        leaks += find_secrets(stdout.encode(), cores, f"stdout of `{command}`")
        leaks += find_secrets(stderr.encode(), cores, f"stderr of `{command}`")
    files = sorted(path for path in demo.root.rglob("*") if path.is_file())
    for path in files:
        leaks += scan_file(path, cores, demo.root)
    event_leaks, seen = scan_event_log(demo.home, cores, monkeypatch)
    leaks += event_leaks
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)

    # The scan covered a demo that really ran: one successful run that materialized the whole graph, and the
    # files it leaves behind.
    assert seen["runs"] == [("__ASSET_JOB", "SUCCESS")], seen["runs"]
    deployment = seen["materialized"]["waldinger/serving/realtime_deployment"]
    assert deployment["smoke_requests"].value == 8, "the smoke test passed the key-protected endpoint"
    assert "sent to webhook" in seen["materialized"]["waldinger/schema_drift/drift_report"]["alert"].value
    assert "WALDINGER/LLM/BATCH_OUTPUTS" in seen["materialized"], sorted(seen["materialized"])
    assert seen["events"] > 100
    names = {path.name for path in files}
    assert {"runs.db", "index.db", "server.log", "last_drift_alert.json", "baseline.json"} <= names, names
    assert any(path.suffix == ".out" for path in files), "step compute logs were scanned"
    assert any(name.endswith(".snapshot.json.gz") for name in names), "schema history was scanned"
