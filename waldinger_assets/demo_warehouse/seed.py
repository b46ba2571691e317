"""Creates the demo warehouse through the Snowflake connector, idempotently.

Running it again creates only what is missing: objects that already exist are left alone (so a change a user
made to a table, e.g. to try the drift gate, is not undone), prompts are added only for dates that have none, the
reviewed examples only when there are none, and a past day's labels only when that day has none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from resources.snowflake_sql import qualified_name, quote_identifier, string_literal
from waldinger_assets.batch.names import BATCH_INPUT_TABLE
from waldinger_assets.batch.output_table import create_table_sql as batch_output_table_sql
from waldinger_assets.demo_warehouse.catalog import (
    DATABASE_LAYOUT,
    DemoCatalog,
    TableSpec,
    ViewSpec,
    build_catalog,
)
from waldinger_assets.demo_warehouse.labels import (
    LABELED_EXAMPLES_COLUMNS,
    LabeledExample,
    day_labels,
    reviewed_examples,
)
from waldinger_assets.demo_warehouse.prompts import prompt_dates, prompts_for_date, utc_today
from waldinger_assets.training.names import LABELED_EXAMPLES_TABLE

# Connections that create objects side by side; the embedded server spends most of a DDL statement in
# fakesnow's SQL translation, so a few connections keep both cores busy.
SEED_CONNECTIONS = 3
INSERT_BATCH_ROWS = 500

BATCH_INPUT_COLUMNS = (
    ("PROMPT_ID", "VARCHAR(64) NOT NULL"),
    ("PROMPT_DATE", "DATE NOT NULL"),
    ("PROMPT", "VARCHAR(16777216)"),
    ("USER_ID", "NUMBER(38,0)"),
    ("CREATED_AT", "TIMESTAMP_NTZ(9)"),
)


@dataclass(frozen=True)
class SeedResult:
    tables_created: int
    views_created: int
    objects_existing: int
    prompt_rows_inserted: int
    prompt_dates_filled: tuple[dt.date, ...]
    reviewed_examples_inserted: int
    day_labels_inserted: int
    label_dates_filled: tuple[dt.date, ...]  # the prompt days whose labels were added


def create_table_sql(table: TableSpec) -> str:
    columns = []
    for column in table.columns:
        parts = [quote_identifier(column.name), column.data_type]
        if not column.nullable:
            parts.append("NOT NULL")
        if column.default is not None:
            parts.append(f"DEFAULT {column.default}")
        columns.append(" ".join(parts))
    kind = "TRANSIENT TABLE" if table.transient else "TABLE"
    comment = f" COMMENT = {string_literal(table.comment)}" if table.comment else ""
    name = qualified_name(table.database, table.schema, table.name)
    return f"CREATE {kind} IF NOT EXISTS {name} ({', '.join(columns)}){comment}"


def create_view_sql(view: ViewSpec) -> str:
    select_list = ", ".join(quote_identifier(column) for column in view.columns)
    source = qualified_name(view.source.database, view.source.schema, view.source.name)
    where = f" WHERE {quote_identifier(view.filter_column)} > 0" if view.filter_column else ""
    comment = f" COMMENT = {string_literal(view.comment)}" if view.comment else ""
    name = qualified_name(view.database, view.schema, view.name)
    return f"CREATE VIEW IF NOT EXISTS {name}{comment} AS SELECT {select_list} FROM {source}{where}"


# One function per table, each over its own constant columns (tests/security/test_sql_is_built_safely.py proves
# such statements constant; column definitions passed in as a parameter it cannot).
def batch_input_table_sql() -> str:
    columns = ", ".join(f"{quote_identifier(name)} {definition}" for name, definition in BATCH_INPUT_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified_name(*BATCH_INPUT_TABLE)} ({columns})"


def labeled_examples_table_sql() -> str:
    columns = ", ".join(f"{quote_identifier(name)} {definition}" for name, definition in LABELED_EXAMPLES_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified_name(*LABELED_EXAMPLES_TABLE)} ({columns})"


def _existing_objects(cursor, databases: Iterable[str]) -> set[tuple[str, str, str]]:
    existing: set[tuple[str, str, str]] = set()
    for database in databases:
        for metadata_view in ("TABLES", "VIEWS"):
            cursor.execute(
                f"SELECT TABLE_SCHEMA, TABLE_NAME FROM {quote_identifier(database)}.INFORMATION_SCHEMA.{metadata_view}"
            )
            existing.update((database, schema, name) for schema, name in cursor.fetchall())
    return existing


def _run_statements(connect: Callable, statements: list[str]) -> None:
    if not statements:
        return
    workers = min(SEED_CONNECTIONS, len(statements))
    chunks = [statements[index::workers] for index in range(workers)]

    def run_chunk(chunk: list[str]) -> None:
        with connect() as connection:
            cursor = connection.cursor()
            for statement in chunk:
                cursor.execute(statement)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run_chunk, chunk) for chunk in chunks]:
            future.result()


def _insert_prompts(cursor, today: dt.date) -> tuple[int, tuple[dt.date, ...]]:
    table = qualified_name(*BATCH_INPUT_TABLE)
    cursor.execute(f"SELECT DISTINCT PROMPT_DATE FROM {table}")
    present = {row[0] for row in cursor.fetchall()}
    missing = [day for day in prompt_dates(today) if day not in present]
    inserted = 0
    for day in missing:
        rows = [(r.prompt_id, r.prompt_date, r.prompt, r.user_id, r.created_at) for r in prompts_for_date(day)]
        _insert_rows(cursor, BATCH_INPUT_TABLE, BATCH_INPUT_COLUMNS, rows)
        inserted += len(rows)
    return inserted, tuple(missing)


def _insert_rows(cursor, table: tuple[str, str, str], columns: tuple[tuple[str, str], ...], rows: list[tuple]) -> None:
    column_list = ", ".join(quote_identifier(name) for name, _ in columns)
    insert = f"INSERT INTO {qualified_name(*table)} ({column_list}) VALUES ({', '.join(['%s'] * len(columns))})"
    for start in range(0, len(rows), INSERT_BATCH_ROWS):
        cursor.executemany(insert, rows[start : start + INSERT_BATCH_ROWS])


def _label_values(examples: list[LabeledExample]) -> list[tuple]:
    return [(e.example_id, e.prompt, e.expected, e.labeled_at, e.source_prompt_id) for e in examples]


def _insert_labeled_examples(cursor, today: dt.date) -> tuple[int, int, tuple[dt.date, ...]]:
    """The reviewed examples unless there are some already, and the labels of each past prompt day that has none
    (a day's labels arrive the day after it, so today has none yet)."""
    table = qualified_name(*LABELED_EXAMPLES_TABLE)
    cursor.execute(f'SELECT COUNT(*) FROM {table} WHERE "SOURCE_PROMPT_ID" IS NULL')
    reviewed = [] if cursor.fetchone()[0] else reviewed_examples(prompt_dates(today)[0])
    _insert_rows(cursor, LABELED_EXAMPLES_TABLE, LABELED_EXAMPLES_COLUMNS, _label_values(reviewed))
    cursor.execute(
        f'SELECT DISTINCT p."PROMPT_DATE" FROM {table} AS l JOIN {qualified_name(*BATCH_INPUT_TABLE)} AS p '
        'ON p."PROMPT_ID" = l."SOURCE_PROMPT_ID"'
    )
    labeled = {row[0] for row in cursor.fetchall()}
    days = [day for day in prompt_dates(today) if day < today and day not in labeled]
    labels = [label for day in days for label in day_labels(day)]
    _insert_rows(cursor, LABELED_EXAMPLES_TABLE, LABELED_EXAMPLES_COLUMNS, _label_values(labels))
    return len(reviewed), len(labels), tuple(days)


def seed(connect: Callable, today: dt.date | None = None, catalog: DemoCatalog | None = None) -> SeedResult:
    """Creates what is missing of the demo warehouse. `connect()` returns a context manager yielding a
    Snowflake connection (e.g. `SnowflakeResource.get_connection`)."""
    catalog = catalog or build_catalog()
    today = today or utc_today()
    with connect() as connection:
        cursor = connection.cursor()
        for database, schemas in DATABASE_LAYOUT.items():
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
            for schema in schemas:
                cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {qualified_name(database, schema)}")
        existing = _existing_objects(cursor, DATABASE_LAYOUT)

    def missing(objects):
        return [obj for obj in objects if (obj.database, obj.schema, obj.name) not in existing]

    new_tables = missing(catalog.tables)
    new_views = missing(catalog.views)
    # Views select from tables, so every table exists before the first view is created.
    _run_statements(connect, [create_table_sql(table) for table in new_tables])
    _run_statements(connect, [create_view_sql(view) for view in new_views])
    with connect() as connection:
        cursor = connection.cursor()
        cursor.execute(batch_input_table_sql())
        cursor.execute(batch_output_table_sql())  # the pipeline's own table, so the baseline knows it
        inserted, dates = _insert_prompts(cursor, today)
        cursor.execute(labeled_examples_table_sql())
        reviewed, labels, label_dates = _insert_labeled_examples(cursor, today)
    return SeedResult(
        tables_created=len(new_tables),
        views_created=len(new_views),
        objects_existing=catalog.object_count - len(new_tables) - len(new_views),
        prompt_rows_inserted=inserted,
        prompt_dates_filled=dates,
        reviewed_examples_inserted=reviewed,
        day_labels_inserted=labels,
        label_dates_filled=label_dates,
    )
