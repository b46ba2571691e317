"""Reads Snowflake metadata in bulk: a fixed number of INFORMATION_SCHEMA queries per database, however many
objects it holds (4 per database: SCHEMATA, TABLES, VIEWS, COLUMNS), instead of one query per table.

When Snowflake refuses a database-wide INFORMATION_SCHEMA query because the result is too large (error 090030),
the same queries run once per schema; when even the schema list is refused, schemas are listed with SHOW,
paged past its 10,000-row cap. Identifiers are always quoted and values bound.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterable
from dataclasses import dataclass

from resources.snowflake_sql import quote_identifier
from waldinger_assets.schema_drift.schema_objects import Snapshot
from waldinger_assets.schema_drift.snapshot import build_objects

INFORMATION_SCHEMA_TOO_LARGE = 90030  # "Information schema query returned too much data"
SHOW_PAGE_SIZE = 10_000
OBJECT_VIEWS = ("TABLES", "VIEWS", "COLUMNS")


class CountingCursor:
    """A cursor that counts the statements it runs (the benchmarks and the asset report the figure)."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor
        self.queries = 0

    def execute(self, sql: str, params=None):
        self.queries += 1
        return self._cursor.execute(sql, params)

    def rows(self) -> list[dict]:
        names = [column[0].upper() for column in self._cursor.description]
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]


def _is_too_large(error: Exception) -> bool:
    return getattr(error, "errno", None) == INFORMATION_SCHEMA_TOO_LARGE


def show_all(cursor: CountingCursor, show_statement: str, page_size: int = SHOW_PAGE_SIZE) -> list[dict]:
    """Every row of a SHOW command, paging past its row cap with `LIMIT n FROM 'last name'`."""
    rows: list[dict] = []
    last_name = None
    while True:
        if last_name is None:
            cursor.execute(f"{show_statement} LIMIT {int(page_size)}")
        else:
            cursor.execute(f"{show_statement} LIMIT {int(page_size)} FROM %s", (last_name,))
        page = cursor.rows()
        rows.extend(page)
        if len(page) < page_size:
            return rows
        last_name = page[-1]["NAME"]


def _schema_rows(cursor: CountingCursor, database: str) -> list[dict]:
    info = f"{quote_identifier(database)}.INFORMATION_SCHEMA"
    try:
        cursor.execute(f"SELECT * FROM {info}.SCHEMATA")
        return cursor.rows()
    except Exception as error:
        if not _is_too_large(error):
            raise
    rows = show_all(cursor, f"SHOW SCHEMAS IN DATABASE {quote_identifier(database)}")
    return [{"SCHEMA_NAME": r["NAME"], "COMMENT": r.get("COMMENT")} for r in rows]


def _object_rows(cursor: CountingCursor, database: str, view: str, schemas: Iterable[str]) -> list[dict]:
    info = f"{quote_identifier(database)}.INFORMATION_SCHEMA"
    try:
        cursor.execute(f"SELECT * FROM {info}.{view} WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA'")
        return cursor.rows()
    except Exception as error:
        if not _is_too_large(error):
            raise
    rows: list[dict] = []
    for schema in schemas:
        cursor.execute(f"SELECT * FROM {info}.{view} WHERE TABLE_SCHEMA = %s", (schema,))
        rows.extend(cursor.rows())
    return rows


@dataclass(frozen=True)
class DatabaseMetadata:
    database: str
    schemas: list[dict]
    tables: list[dict]
    views: list[dict]
    columns: list[dict]


def fetch_database_metadata(cursor: CountingCursor, database: str) -> DatabaseMetadata:
    try:
        schema_rows = _schema_rows(cursor, database)
    except Exception as error:
        if "does not exist" not in str(error):
            raise
        raise LookupError(
            f"Database {database!r} does not exist or the role cannot see it; check WALDINGER_DATABASES "
            "(names as Snowflake stores them, e.g. upper case) and the role's grants."
        ) from error
    schemas = [str(r["SCHEMA_NAME"]) for r in schema_rows if r["SCHEMA_NAME"] != "INFORMATION_SCHEMA"]
    tables, views, columns = (_object_rows(cursor, database, view, schemas) for view in OBJECT_VIEWS)
    return DatabaseMetadata(database, schema_rows, tables, views, columns)


def take_snapshot(connection, databases: Iterable[str], view_sql_memo: dict[str, str | None] | None = None) -> Snapshot:
    """The canonical definitions of every object in `databases`, read now."""
    cursor = CountingCursor(connection.cursor())
    objects = []
    databases = tuple(databases)
    # Tens of thousands of small objects are created and none becomes garbage: the cyclic collector would
    # only rescan them (about half the build time), so it pauses while the snapshot is built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for database in databases:
            metadata = fetch_database_metadata(cursor, database)
            objects.extend(
                build_objects(
                    database,
                    metadata.schemas,
                    metadata.tables,
                    metadata.views,
                    metadata.columns,
                    view_sql_memo=view_sql_memo,
                )
            )
    finally:
        if collecting:
            gc.enable()
    taken_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Snapshot.of(databases, objects, taken_at=taken_at, queries=cursor.queries)
