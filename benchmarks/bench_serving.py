"""Serving benchmarks: the real-time endpoint's overhead over the engine, the batch job's throughput against
the raw engine, and the wall time of a 7-partition backfill. Prints its figures; asserts nothing.

    .venv/bin/python benchmarks/bench_serving.py [--model DIR] [--requests 64] [--skip-backfill]

Real-time: at concurrency 1, 8 and 32, clients send chat completions (max_tokens 16) to the local endpoint
(`waldinger serve`'s server, batching on) and, as the baseline, the same requests go straight to the engine in
batches of the concurrency. The difference at p99 is the server's overhead (target under 10 ms).
Batch: the job's `run_batch` over one demo day's prompts vs `engine.generate` over the same requests in the
same batch size (target ratio at least 0.8), and the job script as a process (model load included).
Backfill: `dagster asset materialize --partition-range` over 7 days of the daily batch (gate, deployment, input,
outputs) on a small embedded warehouse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from waldinger_assets.serving.smoke import percentile  # noqa: E402

MAX_TOKENS = 16
PROMPTS = [
    f"{task} {topic}"
    for task in ("Summarize", "Explain to a new analyst", "List the risks in", "Write a polite reply about")
    for topic in ("the churn dashboard.", "the cost report.", "a failed dbt model.", "the incident postmortem.")
]


def _post(url: str, body: dict) -> float:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        json.loads(response.read())
    return time.perf_counter() - started


def bench_endpoint(url: str, model: str, concurrency: int, requests: int) -> dict:
    bodies = [
        {"model": model, "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], "max_tokens": MAX_TOKENS}
        for i in range(requests)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(lambda body: _post(f"{url}/chat/completions", body), bodies))
    wall = time.perf_counter() - started
    return _figures(latencies, wall, requests)


def bench_engine(engine, concurrency: int, requests: int) -> dict:
    from waldinger_runtime.engine import ChatRequest

    chats = [
        ChatRequest(({"role": "user", "content": PROMPTS[i % len(PROMPTS)]},), max_tokens=MAX_TOKENS)
        for i in range(requests)
    ]
    latencies = []
    started = time.perf_counter()
    for start in range(0, requests, concurrency):
        batch = chats[start : start + concurrency]
        batch_started = time.perf_counter()
        engine.generate(batch)
        latencies += [time.perf_counter() - batch_started] * len(batch)
    wall = time.perf_counter() - started
    return _figures(latencies, wall, requests)


def _figures(latencies: list[float], wall: float, requests: int) -> dict:
    return {
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "rps": round(requests / wall, 1),
    }


def realtime(model_dir: Path, requests: int, work: Path) -> None:
    from resources.serving import local_endpoint
    from resources.serving.artifacts import ServedArtifact
    from waldinger_runtime.engine import TransformersEngine

    engine = TransformersEngine(model_dir)
    artifact = ServedArtifact("bench", "1", "-", "azureml:bench:1", model_dir)
    status, _ = local_endpoint.start(work, artifact, engine="transformers")
    try:
        bench_endpoint(status.url, "bench", 4, 8)  # warm up both
        bench_engine(engine, 4, 8)
        print(f"real-time, {requests} requests of max_tokens {MAX_TOKENS} (tiny model, CPU):")
        print(
            f"{'concurrency':>11} | {'endpoint p50':>12} {'p99':>8} {'req/s':>7} | {'engine p50':>10} {'p99':>8} "
            f"{'req/s':>7} | {'p99 overhead':>12}"
        )
        for concurrency in (1, 8, 32):
            served = bench_endpoint(status.url, "bench", concurrency, requests)
            direct = bench_engine(engine, concurrency, requests)
            overhead = served["p99_ms"] - direct["p99_ms"]
            print(
                f"{concurrency:>11} | {served['p50_ms']:>10.1f}ms {served['p99_ms']:>6.1f}ms {served['rps']:>7.1f} | "
                f"{direct['p50_ms']:>8.1f}ms {direct['p99_ms']:>6.1f}ms {direct['rps']:>7.1f} | {overhead:>10.1f}ms"
            )
    finally:
        local_endpoint.stop(work)


def batch(model_dir: Path, work: Path) -> None:
    from waldinger_assets.batch.job_files import request_lines, write_requests
    from waldinger_assets.batch.validation import validate_prompts
    from waldinger_assets.demo_warehouse.prompts import prompts_for_date
    from waldinger_runtime.batch_job import run_batch
    from waldinger_runtime.engine import ChatRequest, TransformersEngine

    day = dt.date(2026, 11, 20)
    validated = validate_prompts([(r.prompt_id, r.prompt) for r in prompts_for_date(day)], max_chars=16000)
    lines = request_lines(day, validated, "bench", max_tokens=32)
    raw_lines = [json.dumps(line) for line in lines]
    engine = TransformersEngine(model_dir)
    chats = [ChatRequest(tuple(line["body"]["messages"]), max_tokens=32) for line in lines]
    engine.generate(chats[:8])  # warm up
    batch_size = 32
    started = time.perf_counter()
    for start in range(0, len(chats), batch_size):
        engine.generate(chats[start : start + batch_size])
    raw_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, figures = run_batch(engine, raw_lines, batch_size, "bench:1")
    job_seconds = time.perf_counter() - started
    requests_file = work / "requests.jsonl"
    write_requests(requests_file, lines)
    command = [sys.executable, "-m", "waldinger_runtime.batch_job", "--model", str(model_dir)]
    command += ["--input", str(requests_file), "--output", str(work / "results.jsonl"), "--engine", "transformers"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO_ROOT)
    process_seconds = time.perf_counter() - started
    print(f"\nbatch, one demo day: {len(lines)} requests of max_tokens 32, batch size {batch_size}:")
    print(f"  raw engine.generate      {raw_seconds:6.2f}s  {len(lines) / raw_seconds:7.1f} req/s")
    print(
        f"  batch job (run_batch)    {job_seconds:6.2f}s  {len(lines) / job_seconds:7.1f} req/s  "
        f"{figures['completion_tokens_per_second']:.0f} completion tokens/s"
    )
    print(f"  throughput ratio job/raw {raw_seconds / job_seconds:6.2f}   (target >= 0.8)")
    print(f"  job script as a process  {process_seconds:6.2f}s  (python start, torch import, model load included)")


def backfill(model_dir: Path, work: Path) -> None:
    from resources.embedded_warehouse import control
    from resources.model_registry.embedded import EmbeddedModelRegistry
    from resources.model_source.tiny_model import TINY_MODEL_NAME
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.demo_warehouse.catalog import DemoCatalog
    from waldinger_assets.demo_warehouse.prompts import prompt_dates, utc_today
    from waldinger_assets.demo_warehouse.seed import seed

    data_dir = work / "data"
    seed(embedded_warehouse(data_dir).get_connection, catalog=DemoCatalog(tables=(), views=()))
    registry = EmbeddedModelRegistry(data_dir / "registry")
    version, _ = registry.register(TINY_MODEL_NAME, model_dir, tags={}, properties={})
    registry.promote(TINY_MODEL_NAME, version.version)
    days = prompt_dates(utc_today())[-8:-1]
    (work / "dagster_home").mkdir()
    env = {
        **os.environ,
        "WALDINGER_DATA_DIR": str(data_dir),
        "WALDINGER_DATABASES": "WALDINGER",
        "WALDINGER_BASELINE": str(work / "baseline.json"),
        "WALDINGER_ENGINE": "transformers",
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    selection = (
        "waldinger/schema_drift/schema_snapshot,waldinger/schema_drift/drift_report,"
        "waldinger/serving/batch_deployment,waldinger/batch/batch_input,WALDINGER/LLM/BATCH_OUTPUTS"
    )
    try:
        for first, last in ((days[0], days[0]), (days[0], days[-1])):
            command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize"]
            command += ["-m", "waldinger_assets.definitions", "--select", selection]
            command += ["--partition-range", f"{first.isoformat()}...{last.isoformat()}"]
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=REPO_ROOT, env=env)
            seconds = time.perf_counter() - started
            count = (last - first).days + 1
            print(f"\nbackfill of {count} partition(s) {first}...{last} (one run, CLI): {seconds:.1f}s wall")
    finally:
        control.stop(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model artifact folder (default: build the tiny model)")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--skip-backfill", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as temporary:
        work = Path(temporary)
        model_dir = args.model
        if model_dir is None:
            from resources.model_source.tiny_model import build_tiny_model

            model_dir = build_tiny_model(work / "tiny")
        realtime(model_dir, args.requests, work / "endpoint")
        batch(model_dir, work)
        if not args.skip_backfill:
            backfill(model_dir, work / "backfill")


if __name__ == "__main__":
    main()
