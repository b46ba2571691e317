"""Sensor tick benchmarks; prints its figures (issue 6: a schema change sensor tick on the 3,000-object demo
warehouse stays under 0.5 s; never asserted in tests).

(a) schema_change_sensor tick in the steady state (its cursor is the current state: no change, a skip);
(b) the fingerprint queries alone (one per database, on an open connection), per database and in total, and
    opening + closing a warehouse connection, to show where a tick's time goes;
(c) batch_input_sensor, (d) model_version_sensor, (e) drift_alert_sensor ticks in the steady state.
Every figure: the first tick of the process (cold: the first one imports the connector and logs in), then the
median and max of N ticks after one warm-up. Ticks are evaluated the way the tests do it, by calling the sensor
with `build_sensor_context(instance=..., cursor=..., resources=build_resources())` on a persistent instance.

Usage: .venv/bin/python benchmarks/bench_sensors.py [--data-dir DIR] [--repeats N]
The demo warehouse in DIR (default: the project's data directory) is started and seeded if needed, and stopped
at the end if this run started it. (d) uses DIR's model registry when it has a production version; otherwise
the tiny model is built, registered and promoted in a temporary registry (DIR is not written to).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from resources import environment

SCHEMA_CHANGE_TARGET_S = 0.5
# Positions of the counts in a database fingerprint `count:hash|count:hash|...` (see FINGERPRINTED_VIEWS).
FINGERPRINT_PARTS = ("COLUMNS", "TABLES", "VIEWS", "SCHEMATA")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensure_demo_warehouse(data_dir: Path) -> tuple[bool, str | None]:
    """Starts the embedded warehouse in data_dir and seeds what is missing of the demo (as bench_drift does).
    Returns (whether it was running before, a note when something was seeded)."""
    from resources.embedded_warehouse import control
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.demo_warehouse.seed import seed

    was_running = control.status(data_dir).running
    control.ensure_running(data_dir)
    started = time.perf_counter()
    seeded = seed(embedded_warehouse(data_dir).get_connection)
    note = None
    if seeded.tables_created or seeded.views_created:
        note = (
            f"seeded the demo warehouse first: {seeded.tables_created} tables, {seeded.views_created} views "
            f"in {time.perf_counter() - started:.0f} s"
        )
    return was_running, note


@contextmanager
def counted_queries() -> Iterator[dict]:
    """Counts the statements run through the Snowflake connector (every cursor, the sensors' own included)."""
    from snowflake.connector.cursor import SnowflakeCursor

    original = SnowflakeCursor.execute
    counter = {"queries": 0}

    def execute(self, *args, **kwargs):
        counter["queries"] += 1
        return original(self, *args, **kwargs)

    SnowflakeCursor.execute = execute
    try:
        yield counter
    finally:
        SnowflakeCursor.execute = original


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def repeated(call: Callable[[], object], repeats: int) -> dict:
    """One warm-up, then `repeats` timed calls (and the warehouse statements each ran)."""
    call()
    timings, results = [], []
    with counted_queries() as counter:
        for _ in range(repeats):
            seconds, result = timed(call)
            timings.append(seconds)
            results.append(result)
    return {
        "median": statistics.median(timings),
        "max": max(timings),
        "queries": counter["queries"] / repeats,
        "last": results[-1],
    }


def tick_row(name: str, sensor, context: Callable, repeats: int, watches: Callable | str) -> dict:
    """The first tick (no cursor), then steady-state ticks with the cursor it left (a model_version_sensor's
    first tick deploys, so its steady state is the cursor of that deploy request)."""
    cold, first = timed(lambda: sensor(context(None)))
    figures = repeated(lambda: sensor(context(first.cursor)), repeats)
    steady = figures["last"]
    return {
        "sensor": name,
        "watches": watches(first) if callable(watches) else watches,
        "cold": cold,
        **figures,
        "steady": steady.skip_reason.skip_message if steady.skip_reason else f"{len(steady.run_requests)} run(s)!",
    }


def object_counts(fingerprints: dict[str, str]) -> dict[str, dict[str, int]]:
    """{database: {COLUMNS: n, TABLES: n, VIEWS: n, SCHEMATA: n}} from the fingerprints' counts."""
    return {
        database: {
            part: int(value.partition(":")[0])
            for part, value in zip(FINGERPRINT_PARTS, fingerprint.split("|"), strict=True)
        }
        for database, fingerprint in fingerprints.items()
    }


def fingerprint_rows(warehouse, databases: list[str], repeats: int) -> tuple[list[dict], dict[str, str]]:
    """(b): each database's fingerprint query, all of them, and a connection's open + close, on their own."""
    from waldinger_assets.schema_drift.fingerprint import database_fingerprints

    rows = []
    with warehouse.get_connection() as connection:
        for database in databases:
            cold, _ = timed(lambda database=database: database_fingerprints(connection, [database]))
            figures = repeated(lambda database=database: database_fingerprints(connection, [database]), repeats)
            rows.append({"sensor": f"  fingerprint query {database}", "cold": cold, **figures})
        cold, fingerprints = timed(lambda: database_fingerprints(connection, databases))
        figures = repeated(lambda: database_fingerprints(connection, databases), repeats)
        rows.append({"sensor": f"  fingerprint queries, all {len(databases)}", "cold": cold, **figures})

    def open_and_close():
        with warehouse.get_connection():
            pass

    cold, _ = timed(open_and_close)
    rows.append({"sensor": "  warehouse connection open + close", "cold": cold, **repeated(open_and_close, repeats)})
    counts = object_counts(fingerprints)
    for row, database in zip(rows, databases, strict=False):
        row["watches"] = f"{counts[database]['TABLES']:,} tables + {counts[database]['VIEWS']:,} views"
    rows[len(databases)]["watches"] = f"{sum(c['COLUMNS'] for c in counts.values()):,} columns"
    rows[-1]["watches"] = "login, then COMMIT on close"
    return rows, fingerprints


@contextmanager
def production_registry(resources: dict) -> Iterator[str]:
    """Makes sure resources["model_registry"] has a production version; yields where it comes from."""
    from resources.model_registry import EmbeddedModelRegistryResource

    registry = resources["model_registry"]
    production = registry.registry().production(registry.model_name)
    if production is not None:
        yield f"{registry.model_name} v{production.version} (data dir registry)"
        return
    from resources.model_registry.embedded import EmbeddedModelRegistry
    from resources.model_source.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="bench-sensors-registry-") as scratch:
        temporary = EmbeddedModelRegistry(Path(scratch) / "registry")
        version, _ = temporary.register(
            registry.model_name, build_tiny_model(Path(scratch) / "tiny"), tags={}, properties={}
        )
        temporary.promote(registry.model_name, version.version)
        resources["model_registry"] = EmbeddedModelRegistryResource(
            model_name=registry.model_name, root=str(temporary.root)
        )
        try:
            yield f"{registry.model_name} v{version.version} (temporary registry)"
        finally:
            resources["model_registry"] = registry


def print_table(rows: list[dict]) -> None:
    header = ("sensor", "watches", "warehouse queries/tick", "first s", "median s", "max s", "target")
    lines = [
        (
            row["sensor"],
            row["watches"],
            f"{row['queries']:g}",
            f"{row['cold']:.3f}",
            f"{row['median']:.3f}",
            f"{row['max']:.3f}",
            row.get("target", ""),
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    align = ["<", "<", ">", ">", ">", ">", "<"]
    for cells in [header, tuple("-" * width for width in widths), *lines]:
        print("  ".join(f"{cell:{a}{width}}" for cell, a, width in zip(cells, align, widths, strict=True)).rstrip())


def _baseline_row(baseline: Path, repeats: int) -> dict:
    """The baseline file's sha256, which the schema change sensor compares with the cursor's."""
    from waldinger_assets.schema_drift.fingerprint import baseline_fingerprint

    cold, _ = timed(lambda: baseline_fingerprint(baseline))
    size = f"{baseline.stat().st_size / 2**20:.1f} MiB" if baseline.is_file() else "missing"
    return {
        "sensor": "  baseline file sha256",
        "watches": f"{baseline.name} ({size})",
        "cold": cold,
        **repeated(lambda: baseline_fingerprint(baseline), repeats),
    }


def _schema_change_rows(
    schema_change_sensor, context: Callable, resources: dict, databases: list[str], repeats: int
) -> list[dict]:
    """(a) the schema change sensor's ticks, then (b) where a tick's time goes."""
    from sensors.cursors import load_cursor

    def schema_watches(first) -> str:
        counts = object_counts(load_cursor(first.cursor)["databases"])
        objects = sum(c["TABLES"] + c["VIEWS"] for c in counts.values())
        return f"{objects:,} tables and views in {', '.join(databases)}"

    rows = [tick_row("(a) schema_change_sensor", schema_change_sensor, context, repeats, schema_watches)]
    rows[0]["target"] = f"< {SCHEMA_CHANGE_TARGET_S} s"
    fingerprints, _ = fingerprint_rows(resources["warehouse"], databases, repeats)
    fingerprints.append(_baseline_row(Path(resources["schema_drift"].baseline_path), repeats))
    return rows + fingerprints


def _other_sensor_rows(
    batch_input_sensor, model_version_sensor, drift_alert_sensor, context: Callable, resources: dict, repeats: int
) -> tuple[list[dict], str]:
    """(c), (d) and (e); and where (d)'s production version came from."""
    from sensors.cursors import load_cursor

    rows = [
        tick_row(
            "(c) batch_input_sensor",
            batch_input_sensor,
            context,
            repeats,
            lambda first: f"{len(load_cursor(first.cursor)['seen'])} day(s) of input rows",
        )
    ]
    # After (a)-(c): building the tiny model imports torch, which would make the connector's import cheaper.
    with production_registry(resources) as model:
        rows.append(tick_row("(d) model_version_sensor", model_version_sensor, context, repeats, model))
    rows.append(tick_row("(e) drift_alert_sensor", drift_alert_sensor, context, repeats, "contract check history"))
    return rows, model


def _print_notes(rows: list[dict], model: str) -> None:
    print(
        "warehouse queries/tick: statements sent through the connector, including the COMMIT that dagster-snowflake "
        "sends when it closes a connection; first s: the process's first call (the first tick imports the connector)."
    )
    if "temporary registry" in model:
        print("(d): the data dir's registry has no production version; the tiny model was promoted in a temporary one.")
    print(
        "steady-state ticks: "
        + "; ".join(f"{r['sensor'][4:]}: {r['steady'].rstrip('.')}" for r in rows if "steady" in r)
        + "."
    )


def run(repeats: int) -> None:
    import warnings

    from dagster import BetaWarning, build_sensor_context, instance_for_test

    warnings.filterwarnings("ignore", category=BetaWarning)  # backfill_policy, when the definitions load

    # Every sensor module is imported before the first tick, so no cold tick pays for another's imports.
    from resources import build_resources
    from sensors.batch_input import batch_input_sensor
    from sensors.drift_alert import drift_alert_sensor
    from sensors.model_version import model_version_sensor
    from sensors.schema_change import schema_change_sensor

    resources = build_resources()
    databases = list(resources["schema_drift"].databases)
    with (
        tempfile.TemporaryDirectory(prefix="bench-sensors-dagster-") as dagster_home,
        instance_for_test(temp_dir=dagster_home) as instance,
    ):

        def context(cursor: str | None):
            return build_sensor_context(instance=instance, cursor=cursor, resources=resources)

        rows = _schema_change_rows(schema_change_sensor, context, resources, databases, repeats)
        other_rows, model = _other_sensor_rows(
            batch_input_sensor, model_version_sensor, drift_alert_sensor, context, resources, repeats
        )
        rows += other_rows
    print_table(rows)
    _print_notes(rows, model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=environment.data_dir())
    parser.add_argument("--repeats", type=int, default=10, help="timed ticks per sensor, after one warm-up")
    args = parser.parse_args()
    data_dir = args.data_dir.expanduser().resolve()
    os.environ["WALDINGER_DATA_DIR"] = str(data_dir)
    os.environ["WALDINGER_ENV"] = environment.Environment.LOCAL.value
    os.environ.pop("WALDINGER_DATABASES", None)  # the three local databases

    print(
        f"# bench_sensors on {platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; {args.repeats} ticks after one warm-up; data dir {data_dir}"
    )
    from resources.embedded_warehouse import control

    was_running, note = ensure_demo_warehouse(data_dir)
    if note:
        print(f"({note})")
    try:
        run(args.repeats)
    finally:
        if not was_running:
            control.stop(data_dir)
    print(f"peak RSS {peak_rss_mb():.0f} MB; the embedded warehouse was {'left' if was_running else 'stopped'}")


if __name__ == "__main__":
    main()
