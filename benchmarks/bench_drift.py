"""Schema drift benchmarks; prints its figures (targets are in the issue, never asserted in tests).

(a) snapshot + diff of the 3,000-object demo warehouse, and the metadata queries it issues (target < 1.5 s);
(b) diff + classification of a synthetic 100,000 objects with 1,000,000 columns (target < 5 s, < 2 GB RSS);
(c) the same demo objects fetched the way per-table tools do it (one metadata query per table), next to (a).

Usage: .venv/bin/python benchmarks/bench_drift.py [--data-dir DIR] [--skip-per-table]
The demo warehouse in DIR (default: the project's data directory) is started and seeded if needed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import time
from pathlib import Path

from resources import environment
from resources.embedded_warehouse import control
from resources.snowflake_sql import quote_identifier
from resources.warehouse import embedded_warehouse
from waldinger_assets.demo_warehouse.catalog import DATABASE_LAYOUT, build_catalog
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.schema_drift.metadata import CountingCursor, take_snapshot
from waldinger_assets.schema_drift.report import build_report
from waldinger_assets.schema_drift.schema_objects import ColumnDefinition, ObjectDefinition, Snapshot

TYPES = (
    "NUMBER(38,0)",
    "NUMBER(12,2)",
    "VARCHAR(256)",
    "VARCHAR(16777216)",
    "FLOAT",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP_NTZ(9)",
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_demo_snapshot(data_dir: Path, repeats: int = 5) -> dict:
    warehouse = embedded_warehouse(data_dir)
    databases = list(DATABASE_LAYOUT)
    with warehouse.get_connection() as connection:
        started = time.perf_counter()
        cold = take_snapshot(connection, databases)  # parses every view's SQL
        cold_seconds = time.perf_counter() - started
        memo: dict = {}
        take_snapshot(connection, databases, view_sql_memo=memo)
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            snapshot = take_snapshot(connection, databases, view_sql_memo=memo)
            report = build_report(cold, snapshot, environment.DEFAULT_CONTRACT_OBJECTS)
            timings.append(time.perf_counter() - started)
    assert not report.changes
    return {
        "objects": len(snapshot.objects),
        "tables_and_views": snapshot.count_by_type().get("TABLE", 0) + snapshot.count_by_type().get("VIEW", 0),
        "columns": snapshot.column_count,
        "queries": snapshot.queries,
        "cold_seconds": cold_seconds,
        "median_seconds": statistics.median(timings),
        "min_seconds": min(timings),
    }


def bench_per_table(data_dir: Path) -> dict:
    catalog = build_catalog()
    objects = [(t.database, t.schema, t.name) for t in catalog.tables] + [
        (v.database, v.schema, v.name) for v in catalog.views
    ]
    with embedded_warehouse(data_dir).get_connection() as connection:
        cursor = CountingCursor(connection.cursor())
        started = time.perf_counter()
        columns = 0
        for database, schema, name in objects:
            cursor.execute(
                f"SELECT * FROM {quote_identifier(database)}.INFORMATION_SCHEMA.COLUMNS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (schema, name),
            )
            columns += len(cursor.rows())
        seconds = time.perf_counter() - started
    return {"objects": len(objects), "columns": columns, "queries": cursor.queries, "seconds": seconds}


def _synthetic_baseline(objects: int, columns_per_object: int) -> list[ObjectDefinition]:
    """`objects` tables of `columns_per_object` columns each, spread over 100 schemas of one database."""
    baseline_objects = []
    for index in range(objects):
        columns = tuple(
            ColumnDefinition(f"C{c}", TYPES[(index + c) % len(TYPES)], c % 3 != 0, None, c + 1, None)
            for c in range(columns_per_object)
        )
        schema = f"S{index % 100:03d}"
        baseline_objects.append(
            ObjectDefinition("DB", schema, f"T{index:06d}", "TABLE", "PERMANENT", None, None, columns).with_hashes()
        )
    return baseline_objects


def _changed_columns(columns: list[ColumnDefinition], rng: random.Random) -> list[ColumnDefinition]:
    """One change of a kind picked at random: a column dropped, retyped, renamed, added or commented."""
    change = rng.randrange(5)
    if change == 0:
        columns.pop(rng.randrange(len(columns)))
        columns = [
            ColumnDefinition(c.name, c.data_type, c.nullable, c.default, i + 1, c.comment)
            for i, c in enumerate(columns)
        ]
    elif change == 1:
        c = columns[2]
        columns[2] = ColumnDefinition(c.name, "VARCHAR(10)", c.nullable, c.default, c.position, c.comment)
    elif change == 2:
        c = columns[4]
        columns[4] = ColumnDefinition(c.name + "_RENAMED", c.data_type, c.nullable, c.default, c.position, c.comment)
    elif change == 3:
        columns.append(ColumnDefinition("ADDED", "VARCHAR(16777216)", True, None, len(columns) + 1, None))
    else:
        c = columns[1]
        columns[1] = ColumnDefinition(c.name, c.data_type, c.nullable, c.default, c.position, "documented")
    return columns


def _with(obj: ObjectDefinition, name: str, columns: tuple[ColumnDefinition, ...]) -> ObjectDefinition:
    """`obj` under `name` with `columns`, its hashes computed again."""
    return ObjectDefinition(
        obj.database, obj.schema, name, obj.object_type, obj.table_kind, obj.comment, obj.definition, columns
    ).with_hashes()


def synthetic_snapshots(objects: int, columns_per_object: int, seed_value: int = 7) -> tuple[Snapshot, Snapshot]:
    """A baseline and a current state differing in ~1% of objects, with every kind of change."""
    rng = random.Random(seed_value)
    baseline_objects = _synthetic_baseline(objects, columns_per_object)
    current = {o.key: o for o in baseline_objects}
    for obj in rng.sample(baseline_objects, objects // 100):
        current[obj.key] = _with(obj, obj.name, tuple(_changed_columns(list(obj.columns), rng)))
    for obj in rng.sample(baseline_objects, 200):
        if obj.key in current and current[obj.key] is obj:
            del current[obj.key]
            if rng.random() < 0.5:  # renamed rather than dropped
                renamed = _with(obj, obj.name + "_NEW", obj.columns)
                current[renamed.key] = renamed
    return Snapshot.of(["DB"], baseline_objects), Snapshot(("DB",), current)


def bench_synthetic(objects: int = 100_000, columns_per_object: int = 10) -> dict:
    started = time.perf_counter()
    baseline, current = synthetic_snapshots(objects, columns_per_object)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = build_report(baseline, current, ["DB.S000.T000000"])
    diff_seconds = time.perf_counter() - started
    return {
        "objects": len(baseline.objects),
        "columns": baseline.column_count,
        "changes": len(report.changes),
        "by_severity": report.counts(),
        "diff_seconds": diff_seconds,
        "generate_seconds": build_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=environment.data_dir())
    parser.add_argument("--skip-per-table", action="store_true", help="skip (c), which takes minutes")
    args = parser.parse_args()

    print(
        f"# bench_drift on {platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    control.ensure_running(args.data_dir)
    seeded = seed(embedded_warehouse(args.data_dir).get_connection)
    if seeded.tables_created or seeded.views_created:
        print(f"(seeded the demo warehouse first: {seeded.tables_created} tables, {seeded.views_created} views)")

    synthetic = bench_synthetic()
    print(
        f"(b) synthetic diff + classification: {synthetic['objects']:,} objects, {synthetic['columns']:,} columns, "
        f"{synthetic['changes']:,} changes {synthetic['by_severity']}: {synthetic['diff_seconds']:.2f} s "
        f"(target < 5 s); peak RSS {synthetic['peak_rss_mb']:.0f} MB incl. generating both snapshots "
        f"(target < 2048 MB); generation {synthetic['generate_seconds']:.1f} s (not part of the target)"
    )
    demo = bench_demo_snapshot(args.data_dir)
    print(
        f"(a) demo warehouse snapshot + diff: {demo['tables_and_views']:,} tables and views "
        f"({demo['objects']:,} objects "
        f"with databases and schemas), {demo['columns']:,} columns, {demo['queries']} metadata queries: "
        f"median {demo['median_seconds']:.2f} s, best {demo['min_seconds']:.2f} s (target < 1.5 s); "
        f"first snapshot with every view's SQL parsed: {demo['cold_seconds']:.2f} s"
    )
    if not args.skip_per_table:
        per_table = bench_per_table(args.data_dir)
        print(
            f"(c) per-table metadata (one COLUMNS query per table or view): {per_table['objects']:,} objects, "
            f"{per_table['columns']:,} columns, {per_table['queries']:,} queries: {per_table['seconds']:.1f} s; "
            f"bulk (a) is {per_table['seconds'] / demo['median_seconds']:.0f}x faster with "
            f"{per_table['queries'] / demo['queries']:.0f}x fewer queries"
        )


if __name__ == "__main__":
    main()
