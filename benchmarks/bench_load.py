"""Load on the embedded default: a 30-partition backfill as 4 concurrent runs, and the real-time endpoint under a
bounded load on loopback. Prints its figures; exits 1 if a run failed, a day's row count is off, a lock error
was logged, or a request failed (these are the load's pass conditions, not timing targets).

    .venv/bin/python benchmarks/bench_load.py [--days 30] [--runs 4] [--duration 60] [--concurrency 32]
                                              [--skip-backfill] [--skip-realtime]

Backfill: the demo's prompts (200 to 320 a day, the special rows included) for `--days` days in a small embedded
warehouse; the drift gate and the batch deployment materialized once; then `--runs` processes of
`dagster asset materialize --partition-range`, each over its own slice of the days, at the same time against one
DAGSTER_HOME (SQLite), one warehouse and one registry, as run workers would. Every day must end with exactly one
output row per prompt, written once.
Real-time: `--concurrency` clients send chat completions (max_tokens 16) back to back for `--duration` seconds
to the local endpoint (`waldinger serve`'s server on the tiny model); errors, p50/p99/max latency and req/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from waldinger_assets.serving.smoke import percentile  # noqa: E402

LOCK_ERRORS = re.compile(r"database is locked|could not set lock|lock timeout|Conflict on|deadlock", re.IGNORECASE)
BATCH_SELECTION = "waldinger/batch/batch_input,WALDINGER/LLM/BATCH_OUTPUTS"
GATE_SELECTION = (
    "waldinger/schema_drift/schema_snapshot,waldinger/schema_drift/drift_report,waldinger/serving/batch_deployment"
)


def slices(days: list[dt.date], runs: int) -> list[list[dt.date]]:
    """`days` cut into `runs` consecutive slices whose sizes differ by one at most."""
    size, extra = divmod(len(days), runs)
    cuts, start = [], 0
    for index in range(runs):
        end = start + size + (1 if index < extra else 0)
        cuts.append(days[start:end])
        start = end
    return [cut for cut in cuts if cut]


def _dagster_materialize(selection: str, first: dt.date | None = None, last: dt.date | None = None) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "waldinger_assets.definitions",
    ]
    command += ["--select", selection]
    if first is not None and last is not None:
        command += ["--partition-range", f"{first.isoformat()}...{last.isoformat()}"]
    return command


def _seed_prompts(warehouse, today: dt.date, days: list[dt.date]) -> dict[dt.date, int]:
    """The demo warehouse with the demo's prompts for `days` only; returns each day's prompt count."""
    from waldinger_assets.demo_warehouse.catalog import DemoCatalog
    from waldinger_assets.demo_warehouse.prompts import prompts_for_date
    from waldinger_assets.demo_warehouse.seed import seed

    seed(warehouse.get_connection, today=today, catalog=DemoCatalog(tables=(), views=()))
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute('DELETE FROM "WALDINGER"."LLM"."PROMPTS"')
        rows = [
            (row.prompt_id, row.prompt_date, row.prompt, row.user_id, row.created_at)
            for day in days
            for row in prompts_for_date(day)
        ]
        cursor.executemany(
            'INSERT INTO "WALDINGER"."LLM"."PROMPTS" ("PROMPT_ID", "PROMPT_DATE", "PROMPT", "USER_ID", "CREATED_AT") '
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
    return {day: len(prompts_for_date(day)) for day in days}


def _promote_tiny_model(data_dir: Path, model_dir: Path) -> None:
    from resources.model_registry.embedded import EmbeddedModelRegistry
    from resources.model_source.tiny_model import TINY_MODEL_NAME

    registry = EmbeddedModelRegistry(data_dir / "registry")
    version, _ = registry.register(TINY_MODEL_NAME, model_dir, tags={}, properties={})
    registry.promote(TINY_MODEL_NAME, version.version)


def _backfill_env(work: Path, data_dir: Path, first_day: dt.date) -> dict[str, str]:
    """The environment every run shares: one data dir (warehouse, registry), one DAGSTER_HOME."""
    return {
        **os.environ,
        "WALDINGER_DATA_DIR": str(data_dir),
        "WALDINGER_DATABASES": "WALDINGER",
        "WALDINGER_BASELINE": str(work / "baseline.json"),
        "WALDINGER_SCHEMA_HISTORY_DIR": str(work / "history"),
        "WALDINGER_STORAGE_DIR": str(work / "storage"),
        "WALDINGER_ENGINE": "transformers",
        "WALDINGER_BATCH_START_DATE": first_day.isoformat(),
        "DAGSTER_HOME": str(work / "dagster_home"),
    }


def _open_the_gate(env: dict[str, str]) -> None:
    """Accepts the warehouse's schema, then materializes the drift gate and the batch deployment once."""
    waldinger = str(Path(sys.executable).parent / "waldinger")
    subprocess.run([waldinger, "drift", "accept"], check=True, capture_output=True, cwd=REPO_ROOT, env=env)
    gate = subprocess.run(_dagster_materialize(GATE_SELECTION), capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    if gate.returncode != 0:
        raise SystemExit(f"the drift gate and batch deployment run failed:\n{gate.stderr[-3000:]}")


def _run_concurrently(
    cuts: list[list[dt.date]], work: Path, env: dict[str, str]
) -> list[tuple[list[dt.date], int, float, str]]:
    """One `dagster asset materialize --partition-range` process per cut, all at once; for each: its cut, exit
    code, own wall time and log."""
    processes = []
    for index, cut in enumerate(cuts):
        log = open(work / f"run-{index}.log", "w")  # noqa: SIM115 - closed below
        command = _dagster_materialize(BATCH_SELECTION, cut[0], cut[-1])
        processes.append(
            (
                cut,
                log,
                time.perf_counter(),
                subprocess.Popen(command, stdout=log, stderr=log, cwd=REPO_ROOT, env=env),
            )
        )
    seconds: dict[int, float] = {}
    while len(seconds) < len(processes):  # each run's own wall time, whichever ends first
        for index, (_, _, run_started, process) in enumerate(processes):
            if index not in seconds and process.poll() is not None:
                seconds[index] = time.perf_counter() - run_started
        time.sleep(0.2)
    finished = []
    for index, (cut, log, _, process) in enumerate(processes):
        log.close()
        finished.append((cut, process.returncode, seconds[index], Path(log.name).read_text()))
    return finished


def _output_counts(warehouse) -> dict[dt.date, tuple[int, int, int]]:
    """{day: (output rows, distinct prompts, distinct Dagster runs)} of BATCH_OUTPUTS."""
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute(
            'SELECT "PROMPT_DATE", COUNT(*), COUNT(DISTINCT "PROMPT_ID"), COUNT(DISTINCT "DAGSTER_RUN_ID") '
            'FROM "WALDINGER"."LLM"."BATCH_OUTPUTS" GROUP BY 1'
        )
        return {day: (rows, distinct, run_ids) for day, rows, distinct, run_ids in cursor.fetchall()}


def _report_backfill(
    finished: list[tuple[list[dt.date], int, float, str]],
    wall: float,
    days: list[dt.date],
    expected: dict[dt.date, int],
    counted: dict[dt.date, tuple[int, int, int]],
) -> bool:
    """Prints each run and the row counts; whether every run succeeded without a lock error and every day has
    exactly one output row per prompt, written by one run."""
    healthy = True
    for index, (cut, code, seconds, log) in enumerate(finished):
        locks = LOCK_ERRORS.findall(log)
        ok = code == 0 and "RUN_SUCCESS" in log and not locks
        healthy &= ok
        print(
            f"  run {index}: {cut[0]}...{cut[-1]} ({len(cut)} days) exit {code}, {seconds:6.1f}s, "
            f"lock errors: {len(locks)} {'ok' if ok else 'FAILED'}"
        )
        if not ok:
            print("\n".join(f"    {line}" for line in log.splitlines()[-15:]))
    wrong = {day: counted.get(day) for day in days if counted.get(day) != (expected[day], expected[day], 1)}
    healthy &= not wrong
    print(f"  wall time {wall:.1f}s for {len(days)} partitions ({wall / len(days):.2f}s per partition)")
    print(
        f"  row counts: {len(days) - len(wrong)}/{len(days)} days exact (rows = prompts, no duplicates, one run each)"
        + (f"; off: {wrong}" if wrong else "")
    )
    return healthy


def backfill(model_dir: Path, work: Path, day_count: int, runs: int) -> bool:
    from resources.embedded_warehouse import control
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.demo_warehouse.prompts import utc_today

    data_dir = work / "data"
    warehouse = embedded_warehouse(data_dir)
    today = utc_today()
    days = [today - dt.timedelta(days=offset) for offset in range(day_count, 0, -1)]  # the last N days before today
    expected = _seed_prompts(warehouse, today, days)
    _promote_tiny_model(data_dir, model_dir)
    (work / "dagster_home").mkdir()
    env = _backfill_env(work, data_dir, days[0])
    try:
        _open_the_gate(env)
        cuts = slices(days, runs)
        print(f"backfill: {len(days)} days {days[0]}...{days[-1]}, {sum(expected.values())} prompts, {len(cuts)} runs:")
        started = time.perf_counter()
        finished = _run_concurrently(cuts, work, env)
        wall = time.perf_counter() - started
        counted = _output_counts(warehouse)
    finally:
        control.stop(data_dir)
    return _report_backfill(finished, wall, days, expected, counted)


@dataclass
class _Tally:
    """What the load's clients saw: each success's latency, each failure's reason."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, elapsed: float, failed: str | None) -> None:
        with self.lock:
            if failed:
                self.errors.append(failed)
            else:
                self.latencies.append(elapsed)


def _chat_client(host: str, port: int, index: int, deadline: float, tally: _Tally) -> None:
    """Sends chat completions back to back on one connection until `deadline` (a new connection after an error)."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    body = json.dumps(
        {
            "model": "bench",
            "messages": [{"role": "user", "content": f"Say hello to client {index}."}],
            "max_tokens": 16,
        }
    )
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            failed = None if response.status == 200 and json.loads(payload)["choices"] else f"HTTP {response.status}"
        except Exception as error:
            failed = f"{type(error).__name__}: {error}"
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=120)
        tally.record(time.perf_counter() - started, failed)
    connection.close()


def _report_realtime(tally: _Tally, wall: float, duration_s: float, concurrency: int) -> bool:
    """Prints the load's figures; whether every request succeeded (and some did)."""
    latencies, errors = tally.latencies, tally.errors
    print(
        f"\nreal-time load: {concurrency} clients for {duration_s:.0f}s on loopback (tiny model, CPU, max_tokens 16):"
    )
    print(
        f"  {len(latencies)} ok, {len(errors)} errors, {len(latencies) / wall:.1f} req/s, p50 "
        f"{percentile(latencies, 0.5) * 1000:.0f}ms, p99 {percentile(latencies, 0.99) * 1000:.0f}ms, max "
        f"{max(latencies, default=0) * 1000:.0f}ms"
    )
    for error in sorted(set(errors))[:5]:
        print(f"  error: {error}")
    return not errors and bool(latencies)


def realtime_load(model_dir: Path, work: Path, duration_s: float, concurrency: int) -> bool:
    from resources.serving import local_endpoint
    from resources.serving.artifacts import ServedArtifact

    artifact = ServedArtifact("bench", "1", "-", "azureml:bench:1", model_dir)
    status, _ = local_endpoint.start(work, artifact, engine="transformers")
    host, port = status.url.removeprefix("http://").removesuffix("/v1").split(":")
    tally = _Tally()
    deadline = time.perf_counter() + duration_s
    try:
        started = time.perf_counter()
        threads = [
            threading.Thread(target=_chat_client, args=(host, int(port), index, deadline, tally))
            for index in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        local_endpoint.stop(work)
    return _report_realtime(tally, wall, duration_s, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--skip-realtime", action="store_true")
    args = parser.parse_args()
    healthy = True
    with tempfile.TemporaryDirectory(prefix="bench-load-") as temporary:
        work = Path(temporary)
        from resources.model_source.tiny_model import build_tiny_model

        model_dir = build_tiny_model(work / "tiny")
        if not args.skip_backfill:
            healthy &= backfill(model_dir, work / "backfill", args.days, args.runs)
        if not args.skip_realtime:
            healthy &= realtime_load(model_dir, work / "endpoint", args.duration, args.concurrency)
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
