"""The demo warehouse: deterministic catalog, real object counts after seeding, idempotent re-seeding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from resources.snowflake_sql import qualified_name, quote_identifier
from resources.warehouse import embedded_warehouse
from tests.helpers import SESSION_TODAY
from waldinger_assets.demo_warehouse.catalog import DATABASE_LAYOUT, build_catalog
from waldinger_assets.demo_warehouse.prompts import VERY_LONG_PROMPT_CHARS, prompts_for_date
from waldinger_assets.demo_warehouse.seed import seed


def test_catalog_is_deterministic_and_large_enough() -> None:
    first, second = build_catalog(), build_catalog()
    assert first == second
    assert first.object_count >= 3_000
    assert len(DATABASE_LAYOUT) >= 3
    assert sum(len(schemas) for schemas in DATABASE_LAYOUT.values()) >= 10
    assert all(5 <= len(table.columns) <= 40 for table in first.tables)
    names = [(t.database, t.schema, t.name.upper()) for t in first.tables] + [
        (v.database, v.schema, v.name.upper()) for v in first.views
    ]
    assert len(names) == len(set(names)), "names must be distinct even compared case-insensitively"


def test_prompts_are_deterministic_and_include_hostile_rows() -> None:
    day = dt.date(2026, 11, 1)
    rows = prompts_for_date(day)
    assert rows == prompts_for_date(day)
    assert 200 <= len(rows) <= 320
    texts = [row.prompt for row in rows]
    assert None in texts and "" in texts
    assert max(len(t) for t in texts if t) >= VERY_LONG_PROMPT_CHARS
    assert len({row.prompt_id for row in rows}) == len(rows)


def _query(data_dir: Path, sql: str) -> list[tuple]:
    with embedded_warehouse(data_dir).get_connection() as connection:
        return connection.cursor().execute(sql).fetchall()


def _object_counts(data_dir: Path) -> dict[str, tuple[int, int, int]]:
    counts = {}
    for database in DATABASE_LAYOUT:
        info = f"{quote_identifier(database)}.INFORMATION_SCHEMA"
        ((tables,),) = _query(data_dir, f"SELECT COUNT(*) FROM {info}.TABLES")
        ((views,),) = _query(data_dir, f"SELECT COUNT(*) FROM {info}.VIEWS")
        ((schemas,),) = _query(
            data_dir, f"SELECT COUNT(*) FROM {info}.SCHEMATA WHERE SCHEMA_NAME <> 'INFORMATION_SCHEMA'"
        )
        counts[database] = (tables, views, schemas)
    return counts


@pytest.mark.slow
def test_seeded_warehouse_holds_the_catalog(seeded_data_dir: Path) -> None:
    catalog = build_catalog()
    counts = _object_counts(seeded_data_dir)
    tables = sum(c[0] for c in counts.values())
    views = sum(c[1] for c in counts.values())
    assert tables == len(catalog.tables) + 2  # + the batch input and output tables
    assert views == len(catalog.views)
    assert tables + views >= 3_000
    assert sum(c[2] for c in counts.values()) >= 10

    columns = _query(
        seeded_data_dir,
        "SELECT TABLE_SCHEMA, TABLE_NAME, COUNT(*) FROM RAW.INFORMATION_SCHEMA.COLUMNS GROUP BY 1, 2",
    )
    expected = {(t.schema, t.name): len(t.columns) for t in catalog.tables if t.database == "RAW"}
    assert {(schema, name): count for schema, name, count in columns if (schema, name) in expected} == expected
    types = {row[0] for row in _query(seeded_data_dir, "SELECT DISTINCT DATA_TYPE FROM RAW.INFORMATION_SCHEMA.COLUMNS")}
    assert {"NUMBER", "TEXT", "BOOLEAN", "DATE", "TIMESTAMP_NTZ", "VARIANT", "FLOAT"} <= types

    lower_case = _query(
        seeded_data_dir,
        "SELECT COUNT(*) FROM ANALYTICS.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'reporting'",
    )
    assert lower_case[0][0] > 0
    view = next(v for v in catalog.views if v.schema == "reporting")
    selected = _query(seeded_data_dir, f"SELECT COUNT(*) FROM {qualified_name(view.database, view.schema, view.name)}")
    assert selected == [(0,)]


@pytest.mark.slow
def test_seeded_prompts_cover_the_last_week(seeded_data_dir: Path) -> None:
    rows = _query(
        seeded_data_dir,
        "SELECT PROMPT_DATE, COUNT(*), COUNT_IF(PROMPT IS NULL), COUNT_IF(PROMPT = ''), MAX(LENGTH(PROMPT)) "
        "FROM WALDINGER.LLM.PROMPTS GROUP BY PROMPT_DATE ORDER BY PROMPT_DATE",
    )
    dates = [row[0] for row in rows]
    today = SESSION_TODAY
    assert {today - dt.timedelta(days=offset) for offset in range(7)} <= set(dates)
    for day, count, nulls, empties, longest in rows:
        assert count == len(prompts_for_date(day))
        assert nulls > 0 and empties > 0 and longest >= VERY_LONG_PROMPT_CHARS


@pytest.mark.slow
def test_seeding_again_changes_nothing_and_keeps_user_changes(seeded_data_dir: Path) -> None:
    before = _object_counts(seeded_data_dir)
    ((prompt_rows,),) = _query(seeded_data_dir, "SELECT COUNT(*) FROM WALDINGER.LLM.PROMPTS")
    table = build_catalog().tables[0]
    name = qualified_name(table.database, table.schema, table.name)
    _query(seeded_data_dir, f"ALTER TABLE {name} ADD COLUMN ADDED_BY_USER VARCHAR(10)")

    result = seed(embedded_warehouse(seeded_data_dir).get_connection, today=SESSION_TODAY)

    assert (result.tables_created, result.views_created, result.prompt_rows_inserted) == (0, 0, 0)
    assert result.objects_existing == build_catalog().object_count
    assert _object_counts(seeded_data_dir) == before
    assert _query(seeded_data_dir, "SELECT COUNT(*) FROM WALDINGER.LLM.PROMPTS") == [(prompt_rows,)]
    added = _query(
        seeded_data_dir,
        f"SELECT COUNT(*) FROM {quote_identifier(table.database)}.INFORMATION_SCHEMA.COLUMNS "
        f"WHERE TABLE_NAME = '{table.name}' AND COLUMN_NAME = 'ADDED_BY_USER'",
    )
    assert added == [(1,)]
    _query(seeded_data_dir, f"ALTER TABLE {name} DROP COLUMN ADDED_BY_USER")
