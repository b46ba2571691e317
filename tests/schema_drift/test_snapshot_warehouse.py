"""Snapshots read from the embedded warehouse through the real connector: hostile names, bulk query counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources.snowflake_sql import qualified_name, quote_identifier
from resources.warehouse import embedded_warehouse
from waldinger_assets.demo_warehouse.catalog import DATABASE_LAYOUT, build_catalog
from waldinger_assets.schema_drift.diff import diff_snapshots
from waldinger_assets.schema_drift.metadata import take_snapshot

pytestmark = pytest.mark.slow

HOSTILE_SCHEMA = "odd schema; DROP TABLE X"
HOSTILE_TABLE = 'we"ird; name'
HOSTILE_COLUMNS = ["co l", "ünïcødé", "lower", "semi;colon", 'quo"te', "--dash"]


def test_hostile_names_are_snapshotted_exactly(data_dir: Path) -> None:
    warehouse = embedded_warehouse(data_dir)
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE DATABASE {quote_identifier('HOSTILE')}")
        cursor.execute(f"CREATE SCHEMA {qualified_name('HOSTILE', HOSTILE_SCHEMA)}")
        columns = ", ".join(f"{quote_identifier(c)} VARCHAR(10)" for c in HOSTILE_COLUMNS)
        cursor.execute(f"CREATE TABLE {qualified_name('HOSTILE', HOSTILE_SCHEMA, HOSTILE_TABLE)} ({columns})")
        first = take_snapshot(connection, ["HOSTILE"])
        second = take_snapshot(connection, ["HOSTILE"])
    table = first.objects[("HOSTILE", HOSTILE_SCHEMA, HOSTILE_TABLE)]
    assert [c.name for c in table.columns] == HOSTILE_COLUMNS
    assert table.full_name == f"HOSTILE.{HOSTILE_SCHEMA}.{HOSTILE_TABLE}"
    assert ("HOSTILE", HOSTILE_SCHEMA, "") in first.objects
    assert diff_snapshots(first, second) == []


def test_demo_warehouse_snapshot_takes_four_queries_per_database(seeded_data_dir: Path) -> None:
    with embedded_warehouse(seeded_data_dir).get_connection() as connection:
        snapshot = take_snapshot(connection, list(DATABASE_LAYOUT))
    catalog = build_catalog()
    counts = snapshot.count_by_type()
    assert snapshot.queries == 4 * len(DATABASE_LAYOUT)
    assert counts["TABLE"] == len(catalog.tables) + 3  # + the batch input and output tables, the labeled examples
    assert counts["VIEW"] == len(catalog.views)
    assert counts["SCHEMA"] == sum(len(s) for s in DATABASE_LAYOUT.values())
    assert counts["DATABASE"] == len(DATABASE_LAYOUT)
    table = catalog.tables[0]
    snapshotted = snapshot.objects[(table.database, table.schema, table.name)]
    assert [c.name for c in snapshotted.columns] == [c.name for c in table.columns]
    assert snapshotted.comment == table.comment
