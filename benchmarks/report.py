"""Runs every benchmark script once, one after the other on this machine, and writes their figures to
docs/benchmarks.md with the machine, the date, the commit and the command that reproduces each.

    .venv/bin/python benchmarks/report.py [--only bench_load.py ...] [--output docs/benchmarks.md]

(`make benchmarks` runs it.) Run it on an otherwise idle machine: the figures are only comparable between runs on
the same one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Each script with the arguments of its report run (its defaults, i.e. its full figures).
BENCHMARKS: dict[str, list[str]] = {
    "bench_drift.py": [],
    "bench_model.py": [],
    "bench_serving.py": [],
    "bench_sensors.py": [],
    "bench_load.py": [],
    "bench_training.py": ["--steps", "600", "800", "1000"],
}


def _read(path: str, prefix: str) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(prefix)), "unknown")


def machine() -> dict[str, str]:
    memory_kib = _read("/proc/meminfo", "MemTotal").removesuffix(" kB")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=REPO_ROOT)
    return {
        "CPU": f"{_read('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores",
        "memory": f"{int(memory_kib) / 1024**2:.1f} GiB" if memory_kib.isdigit() else "unknown",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "commit": commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
    }


def run(script: str, arguments: list[str]) -> tuple[str, int, float, str]:
    """Runs one script on a data directory and Dagster instance of its own (never the developer's .waldinger/,
    whose warehouse may hold changes of its own): the same starting point on every machine."""
    command = [sys.executable, f"benchmarks/{script}", *arguments]
    shown = " ".join([".venv/bin/python", *command[1:]])
    print(f"running {shown}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as temporary:
        home = Path(temporary) / "dagster_home"
        home.mkdir()
        env = {**os.environ, "WALDINGER_DATA_DIR": str(Path(temporary) / "data"), "DAGSTER_HOME": str(home)}
        started = time.perf_counter()
        finished = subprocess.run(
            command, capture_output=True, text=True, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, env=env
        )
        subprocess.run(  # whatever the script left running in that directory
            [str(Path(sys.executable).parent / "waldinger"), "warehouse", "stop"], capture_output=True, env=env
        )
    seconds = time.perf_counter() - started
    print(finished.stdout, flush=True)
    if finished.returncode != 0:
        print(finished.stderr[-3000:], file=sys.stderr, flush=True)
    return shown, finished.returncode, seconds, finished.stdout.rstrip()


def render(started: dt.datetime, host: dict[str, str], results: list[tuple[str, int, float, str]]) -> str:
    lines = [
        "# Benchmark figures",
        "",
        f"Every benchmark script, run once by `benchmarks/report.py` on {started:%Y-%m-%d} (started "
        f"{started:%H:%M} UTC), one after the other on one machine, each on a fresh data directory. Targets live "
        "in the scripts' docstrings; tests never assert a timing. Regenerate with `make benchmarks` on an idle "
        "machine; compare figures only between runs on the same one.",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in host.items()],
        "",
    ]
    for command, code, seconds, output in results:
        status = "exit 0" if code == 0 else f"**exit {code}: failed**"
        lines += [f"## `{command}`", "", f"{status}, {seconds:.0f} s wall.", "", "```", output, "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run these scripts only")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    host = machine()
    results = [
        run(script, arguments) for script, arguments in BENCHMARKS.items() if script in (args.only or BENCHMARKS)
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(started, host, results))
    print(f"wrote {args.output}")
    sys.exit(0 if all(code == 0 for _, code, _, _ in results) else 1)


if __name__ == "__main__":
    main()
