"""Hostile names through the schema snapshot and the drift path: embedded double quotes, single quotes,
semicolons with `DROP TABLE ...; --`, backslashes, unicode, and names that differ only in case. Every name is
captured exactly, no statement fails, and nothing but the object that changed is touched.

Two halves, because the embedded warehouse is not Snowflake: DuckDB compares identifiers case-insensitively
(so "Orders" and "ORDERS" cannot both exist there), and fakesnow writes some names into its own SQL unescaped:
a single quote in a schema or table name or in a VARCHAR column's name, and a double quote or a dot in a schema
name, fail inside fakesnow. Those names are tested on INFORMATION_SCHEMA rows shaped as real Snowflake returns
them; everything the embedded warehouse can hold is tested through the real connector, the project's metadata
queries and the Dagster assets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import materialize

from resources.alerts import AlertsResource
from resources.schema_drift import SchemaDriftSettings
from resources.schema_history import REPORT, SchemaHistory, read_document
from resources.snowflake_sql import qualified_name, quote_identifier
from resources.warehouse import embedded_warehouse
from tests.fixtures.snowflake_rows import snowflake_column, snowflake_schema, snowflake_table
from waldinger_assets.schema_drift.assets import (
    CONTRACT_CHECK,
    contract_objects_have_no_breaking_drift,
    drift_report,
    schema_snapshot,
    warehouse_matches_baseline,
)
from waldinger_assets.schema_drift.baseline import accept, load_baseline, write_baseline
from waldinger_assets.schema_drift.metadata import take_snapshot
from waldinger_assets.schema_drift.report import build_report
from waldinger_assets.schema_drift.schema_objects import Snapshot
from waldinger_assets.schema_drift.snapshot import build_objects

DATABASE = "HOSTILE"
DROP_SCHEMA = "odd schema; DROP TABLE VICTIM; --"
BACKSLASH_SCHEMA = "back\\slash\\"
UNICODE_SCHEMA = "Ünïcødé ✓ схема"
QUOTED_TABLE = 'we"ird; DROP TABLE "VICTIM"; --'
# (schema, table): every hostile table has the same hostile columns.
HOSTILE_TABLES = (
    (DROP_SCHEMA, QUOTED_TABLE),
    (DROP_SCHEMA, "lower case"),
    (BACKSLASH_SCHEMA, "a\\b\\"),
    (UNICODE_SCHEMA, "тест 表"),
)
HOSTILE_COLUMNS = (
    ("o'clock", "NUMBER(38,0)"),
    ("' OR '1'='1", "NUMBER(38,0)"),
    ('"; DROP TABLE "VICTIM"; --', "VARCHAR(16)"),
    ("semi;colon", "BOOLEAN"),
    ("back\\slash\\", "VARCHAR(16)"),
    ("ünï ✓", "DATE"),
    ("--", "FLOAT"),
    ("lower", "NUMBER(38,0)"),
)
VICTIM = (DATABASE, "SAFE", "VICTIM")
RENAMED = 'it\'s "renamed"; DROP TABLE "VICTIM"; --'
CONTRACT = f"{DATABASE}.{DROP_SCHEMA}.{QUOTED_TABLE}"


def _run(connection, statement: str, *params) -> list[tuple]:
    cursor = connection.cursor()
    cursor.execute(statement, params)
    return cursor.fetchall() if cursor.description else []


@pytest.mark.slow
def test_hostile_names_through_snapshot_baseline_and_drift_on_the_embedded_warehouse(
    data_dir: Path, tmp_path: Path
) -> None:
    warehouse = embedded_warehouse(data_dir)
    columns = ", ".join(f"{quote_identifier(name)} {data_type}" for name, data_type in HOSTILE_COLUMNS)
    with warehouse.get_connection() as connection:
        _run(connection, f"CREATE DATABASE {quote_identifier(DATABASE)}")
        for schema in ("SAFE", DROP_SCHEMA, BACKSLASH_SCHEMA, UNICODE_SCHEMA):
            _run(connection, f"CREATE SCHEMA {qualified_name(DATABASE, schema)}")
        _run(connection, f'CREATE TABLE {qualified_name(*VICTIM)} ("ID" NUMBER(38,0))')
        _run(connection, f"INSERT INTO {qualified_name(*VICTIM)} VALUES (%s)", 1)
        for schema, table in HOSTILE_TABLES:
            _run(connection, f"CREATE TABLE {qualified_name(DATABASE, schema, table)} ({columns})")
            _run(connection, f'INSERT INTO {qualified_name(DATABASE, schema, table)} ("lower") VALUES (%s)', 7)
        before = take_snapshot(connection, [DATABASE])

    # Captured exactly: every schema, table and column name as created.
    for schema, table in HOSTILE_TABLES:
        captured = before.objects[(DATABASE, schema, table)]
        assert [column.name for column in captured.columns] == [name for name, _ in HOSTILE_COLUMNS]
        assert captured.full_name == f"{DATABASE}.{schema}.{table}"
    tables = {key for key, obj in before.objects.items() if obj.object_type == "TABLE"}
    assert tables == {(DATABASE, schema, table) for schema, table in HOSTILE_TABLES} | {VICTIM}

    # The baseline keeps them exactly through its JSON file.
    baseline_path = tmp_path / "baseline.json"
    write_baseline(baseline_path, accept(before, None))
    assert load_baseline(baseline_path).objects == before.objects

    # One hostile table changes: a column renamed to another hostile name, one dropped.
    changed = qualified_name(DATABASE, DROP_SCHEMA, QUOTED_TABLE)
    old_name, new_name = quote_identifier("o'clock"), quote_identifier(RENAMED)
    with warehouse.get_connection() as connection:
        _run(connection, f"ALTER TABLE {changed} RENAME COLUMN {old_name} TO {new_name}")
        _run(connection, f"ALTER TABLE {changed} DROP COLUMN {quote_identifier('semi;colon')}")

    # The drift path as Dagster runs it: snapshot asset, report asset (alert), blocking contract check.
    settings = SchemaDriftSettings(
        databases=[DATABASE],
        contract_objects=[CONTRACT],
        baseline_path=str(baseline_path),
        history_dir=str(tmp_path / "history"),
        dagster_ui_url="http://dagster.test",
    )
    outbox = tmp_path / "outbox.jsonl"
    result = materialize(
        [schema_snapshot, drift_report, contract_objects_have_no_breaking_drift, warehouse_matches_baseline],
        resources={"warehouse": warehouse, "schema_drift": settings, "alerts": AlertsResource(outbox_path=str(outbox))},
        raise_on_error=False,
    )
    failed = {event.step_key for event in result.all_events if event.event_type_value == "STEP_FAILURE"}
    assert failed == {"waldinger__schema_drift__drift_report_contract_objects_have_no_breaking_drift"}, (
        "no statement failed: only the blocking check did, as it must on breaking drift"
    )
    (contract_check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CONTRACT_CHECK]
    assert contract_check.passed is False, "breaking drift on the hostile contract table blocks"

    (report_file,) = SchemaHistory(tmp_path / "history").files(REPORT)
    report = json.loads(read_document(report_file))
    dropped = [(c["object"], c["column"]) for c in report["changes"] if c["change"] == "column_dropped"]
    assert dropped == [(CONTRACT, "semi;colon")]
    renames = [c for c in report["changes"] if c["change"] == "column_renamed"]
    assert [(c["object"], c["column"], c["before"], c["after"]) for c in renames] == [
        (CONTRACT, RENAMED, "o'clock", RENAMED)
    ]
    assert {c["object"] for c in report["changes"]} == {CONTRACT}, "nothing else drifted"
    (alert,) = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert CONTRACT in alert["payload"]["text"] and "semi;colon" in alert["payload"]["text"]

    # Nothing else was touched: the victim and every hostile table still hold their rows.
    with warehouse.get_connection() as connection:
        assert _run(connection, f"SELECT COUNT(*) FROM {qualified_name(*VICTIM)}") == [(1,)]
        for schema, table in HOSTILE_TABLES:
            assert _run(connection, f'SELECT "lower" FROM {qualified_name(DATABASE, schema, table)}') == [(7,)]


# Names the embedded warehouse cannot hold, as real Snowflake stores and returns them.
CASE_SCHEMAS = ("SALES", "Sales", "sales")
CASE_TABLES = ("ORDERS", "Orders", "orders")
CASE_COLUMNS = ("ID", "Id", "id")
QUOTE_SCHEMA = 'it\'s "a.b"; DROP SCHEMA RAW; --'
QUOTE_TABLE = 'o\'brien "x"\\'
QUOTE_COLUMN = "' OR '1'='1'; --"


def _snowflake_rows(dropped_column: str | None = None, dropped_table: str | None = None) -> Snapshot:
    schemas = [snowflake_schema(name) for name in (*CASE_SCHEMAS, QUOTE_SCHEMA)]
    tables, columns = [], []
    for schema in (*CASE_SCHEMAS, QUOTE_SCHEMA):
        for table in (*CASE_TABLES, QUOTE_TABLE):
            if (schema, table) == ("SALES", dropped_table):
                continue
            tables.append(snowflake_table(schema, table))
            names = [name for name in (*CASE_COLUMNS, QUOTE_COLUMN) if (schema, table, name) != dropped_column]
            for position, name in enumerate(names, start=1):
                columns.append(snowflake_column(schema, table, name, position, "NUMBER", precision=38, scale=0))
    return Snapshot.of(["RAW"], build_objects("RAW", schemas, tables, [], columns))


def test_names_differing_only_in_case_or_holding_quotes_stay_distinct_through_the_drift_path(tmp_path: Path) -> None:
    snapshot = _snowflake_rows()
    for schema in (*CASE_SCHEMAS, QUOTE_SCHEMA):
        for table in (*CASE_TABLES, QUOTE_TABLE):
            columns = [c.name for c in snapshot.objects[("RAW", schema, table)].columns]
            assert columns == [*CASE_COLUMNS, QUOTE_COLUMN]
    assert snapshot.count_by_type() == {"DATABASE": 1, "SCHEMA": 4, "TABLE": 16}

    baseline_path = tmp_path / "baseline.json"
    write_baseline(baseline_path, snapshot)
    baseline = load_baseline(baseline_path)
    assert baseline.objects == snapshot.objects

    # "Id" leaves SALES.Orders, and SALES.orders is dropped: only those, not their case-twins.
    current = _snowflake_rows(dropped_column=("SALES", "Orders", "Id"), dropped_table="orders")
    report = build_report(baseline, current, contract_objects=["RAW.SALES.ORDERS", f"RAW.{QUOTE_SCHEMA}.{QUOTE_TABLE}"])
    assert {c.object for c in report.changes} == {"RAW.SALES.Orders", "RAW.SALES.orders"}
    changes = {(c.change, c.object, c.column) for c in report.changes if c.change != "position_changed"}
    assert changes == {("column_dropped", "RAW.SALES.Orders", "Id"), ("object_dropped", "RAW.SALES.orders", None)}
    assert report.contract_breaking == (), "the contract names RAW.SALES.ORDERS, whose case-twins changed"
    contract_report = build_report(baseline, current, contract_objects=["RAW.SALES.Orders"])
    assert [(c.object, c.column) for c in contract_report.contract_breaking] == [("RAW.SALES.Orders", "Id")]

    # A change on the single-quoted names is reported with them exactly.
    quoted = _snowflake_rows(dropped_column=(QUOTE_SCHEMA, QUOTE_TABLE, QUOTE_COLUMN))
    (change,) = build_report(baseline, quoted, contract_objects=[f"RAW.{QUOTE_SCHEMA}.{QUOTE_TABLE}"]).contract_breaking
    assert (change.change, change.object, change.column) == (
        "column_dropped",
        f"RAW.{QUOTE_SCHEMA}.{QUOTE_TABLE}",
        QUOTE_COLUMN,
    )
