"""Bulk metadata reading when Snowflake refuses a database-wide INFORMATION_SCHEMA query (error 090030) and
when SHOW must be paged. Real Snowflake cannot run here, so a fake cursor plays it: it answers from fixture
rows the way Snowflake answers, including the refusal and the 10,000-row SHOW cap."""

from __future__ import annotations

import re

from snowflake.connector.errors import ProgrammingError

from tests.fixtures.snowflake_rows import real_snowflake_rows
from waldinger_assets.schema_drift.metadata import CountingCursor, fetch_database_metadata, show_all


class FakeSnowflakeCursor:
    """Answers INFORMATION_SCHEMA and SHOW SCHEMAS like a very large Snowflake database would."""

    def __init__(self, rows: dict, refuse_database_wide: bool, show_names: list[str] | None = None) -> None:
        self.rows_by_view = {
            "SCHEMATA": rows["schemas"],
            "TABLES": rows["tables"],
            "VIEWS": rows["views"],
            "COLUMNS": rows["columns"],
        }
        self.refuse = refuse_database_wide
        self.show_names = sorted(show_names or [r["SCHEMA_NAME"] for r in rows["schemas"]])
        self.statements: list[tuple[str, object]] = []
        self._result: list[dict] = []

    def execute(self, sql: str, params=None):
        self.statements.append((sql, params))
        if sql.startswith("SHOW SCHEMAS"):
            limit = int(re.search(r"LIMIT (\d+)", sql).group(1))
            names = self.show_names
            start = names.index(params[0]) + 1 if params else 0
            page = names[start : start + min(limit, 10_000)]  # Snowflake's cap
            self._result = [{"name": n, "comment": None} for n in page]
            return self
        view = re.search(r"INFORMATION_SCHEMA\.(\w+)", sql).group(1)
        refused_view = view != "SCHEMATA" or self.rows_by_view["SCHEMATA"] is None
        if self.refuse and refused_view and "TABLE_SCHEMA = %s" not in sql:
            raise ProgrammingError(msg="Information schema query returned too much data.", errno=90030)
        rows = self.rows_by_view[view]
        if params:
            rows = [r for r in rows if r.get("TABLE_SCHEMA") == params[0]]
        self._result = rows
        return self

    @property
    def description(self):
        names = list(self._result[0]) if self._result else ["NAME"]
        return [(name,) for name in names]

    def fetchall(self):
        return [tuple(r.values()) for r in self._result]


def test_bulk_reading_takes_four_queries_per_database() -> None:
    cursor = CountingCursor(FakeSnowflakeCursor(real_snowflake_rows(), refuse_database_wide=False))
    metadata = fetch_database_metadata(cursor, "RAW")
    assert cursor.queries == 4
    assert len(metadata.columns) == 9 and len(metadata.views) == 1


def test_refused_information_schema_queries_fall_back_to_one_query_per_schema() -> None:
    fake = FakeSnowflakeCursor(real_snowflake_rows(), refuse_database_wide=True)
    cursor = CountingCursor(fake)
    metadata = fetch_database_metadata(cursor, "RAW")
    assert len(metadata.columns) == 9 and len(metadata.tables) == 2
    per_schema = [params for sql, params in fake.statements if "TABLE_SCHEMA = %s" in sql]
    assert per_schema == [("SALES",)] * 3  # TABLES, VIEWS, COLUMNS for the one schema; identifiers bound
    assert all('"RAW".INFORMATION_SCHEMA' in sql for sql, _ in fake.statements if "INFORMATION_SCHEMA" in sql)


def test_schemas_come_from_show_when_even_schemata_is_refused() -> None:
    fake = FakeSnowflakeCursor(real_snowflake_rows(), refuse_database_wide=True)
    fake.rows_by_view["SCHEMATA"] = None  # refused below, like the other views
    metadata = fetch_database_metadata(CountingCursor(fake), "RAW")
    assert [s["SCHEMA_NAME"] for s in metadata.schemas] == ["INFORMATION_SCHEMA", "SALES"]
    assert len(metadata.columns) == 9


def test_show_is_paged_past_its_row_cap() -> None:
    names = [f"SCHEMA_{i:05d}" for i in range(25_000)]
    fake = FakeSnowflakeCursor(real_snowflake_rows(), refuse_database_wide=True, show_names=names)
    rows = show_all(CountingCursor(fake), 'SHOW SCHEMAS IN DATABASE "RAW"')
    assert len(rows) == 25_000 and rows[-1]["NAME"] == "SCHEMA_24999"
    assert len(fake.statements) == 3
    assert fake.statements[1] == ('SHOW SCHEMAS IN DATABASE "RAW" LIMIT 10000 FROM %s', ("SCHEMA_09999",))
