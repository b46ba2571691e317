"""Builds canonical object definitions from INFORMATION_SCHEMA rows. Pure: rows are plain dicts (column
names upper-cased), as real Snowflake or the embedded warehouse return them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import lru_cache

from waldinger_assets.schema_drift.canonical import (
    canonical_comment,
    canonical_default,
    canonical_nullable,
    canonical_sql,
    canonical_type,
)
from waldinger_assets.schema_drift.schema_objects import (
    DATABASE,
    SCHEMA,
    TABLE,
    VIEW,
    ColumnDefinition,
    ObjectDefinition,
)

Row = Mapping[str, object]

_TABLE_TYPES = {
    "BASE TABLE": TABLE,
    "TABLE": TABLE,
    "TEMPORARY TABLE": TABLE,
    "LOCAL TEMPORARY": TABLE,
    "VIEW": VIEW,
    "MATERIALIZED VIEW": "MATERIALIZED VIEW",
    "EXTERNAL TABLE": "EXTERNAL TABLE",
    "EVENT TABLE": "EVENT TABLE",
    "DYNAMIC TABLE": "DYNAMIC TABLE",
}


def upper_keys(row: Mapping[str, object]) -> dict[str, object]:
    """The embedded warehouse names some metadata columns in lower case (e.g. TABLES.comment)."""
    return {str(key).upper(): value for key, value in row.items()}


def _upper_keyed(rows: Iterable[Row]) -> list[Row]:
    """Rows with upper-case keys, converting only when needed (a snapshot reads tens of thousands of rows)."""
    rows = list(rows)
    if rows and any(key != key.upper() for key in rows[0]):
        return [upper_keys(row) for row in rows]
    return rows


def _yes(value) -> bool:
    return str(value).strip().upper() in {"YES", "Y", "TRUE", "1"}


def table_kind(row: Row) -> str:
    """PERMANENT, TRANSIENT, TEMPORARY, ICEBERG, DYNAMIC or HYBRID, from the flags INFORMATION_SCHEMA gives."""
    for flag, kind in (
        ("IS_TEMPORARY", "TEMPORARY"),
        ("IS_ICEBERG", "ICEBERG"),
        ("IS_DYNAMIC", "DYNAMIC"),
        ("IS_HYBRID", "HYBRID"),
        ("IS_TRANSIENT", "TRANSIENT"),
    ):
        if _yes(row.get(flag)):
            return kind
    if str(row.get("TABLE_TYPE", "")).upper() in {"TEMPORARY TABLE", "LOCAL TEMPORARY"}:
        return "TEMPORARY"
    return "PERMANENT"


@lru_cache(maxsize=4096)
def _cached_type(data_type, length, precision, scale, datetime_precision) -> str:
    return str(canonical_type(data_type, length, precision, scale, datetime_precision))


@lru_cache(maxsize=4096)
def _cached_default(default) -> str | None:
    return canonical_default(default)


def column_definition(row: Row) -> ColumnDefinition:
    return ColumnDefinition(
        name=str(row["COLUMN_NAME"]),
        data_type=_cached_type(
            row.get("DATA_TYPE"),
            row.get("CHARACTER_MAXIMUM_LENGTH"),
            row.get("NUMERIC_PRECISION"),
            row.get("NUMERIC_SCALE"),
            row.get("DATETIME_PRECISION"),
        ),
        nullable=canonical_nullable(row.get("IS_NULLABLE", "YES")),
        default=_cached_default(row.get("COLUMN_DEFAULT")),
        position=int(row["ORDINAL_POSITION"]),
        comment=canonical_comment(row.get("COMMENT")),
    )


def build_objects(
    database: str,
    schema_rows: Iterable[Row],
    table_rows: Iterable[Row],
    view_rows: Iterable[Row],
    column_rows: Iterable[Row],
    view_sql_memo: dict[str, str | None] | None = None,
) -> list[ObjectDefinition]:
    """Every object of one database. `view_sql_memo` maps raw view text to its canonical form; it is read and
    filled in, so views whose text is unchanged since an earlier snapshot are not parsed again."""
    view_sql_memo = {} if view_sql_memo is None else view_sql_memo
    objects: list[ObjectDefinition] = []
    objects.append(ObjectDefinition(database, "", "", DATABASE).with_hashes())
    for row in _upper_keyed(schema_rows):
        if row["SCHEMA_NAME"] == "INFORMATION_SCHEMA":
            continue
        objects.append(
            ObjectDefinition(
                database, str(row["SCHEMA_NAME"]), "", SCHEMA, comment=canonical_comment(row.get("COMMENT"))
            ).with_hashes()
        )

    columns_by_object: dict[tuple[str, str], list[ColumnDefinition]] = defaultdict(list)
    for row in _upper_keyed(column_rows):
        columns_by_object[(str(row["TABLE_SCHEMA"]), str(row["TABLE_NAME"]))].append(column_definition(row))
    views = {(str(r["TABLE_SCHEMA"]), str(r["TABLE_NAME"])): r for r in _upper_keyed(view_rows)}

    seen: set[tuple[str, str]] = set()
    for row in _upper_keyed(table_rows):
        schema, name = str(row["TABLE_SCHEMA"]), str(row["TABLE_NAME"])
        if schema == "INFORMATION_SCHEMA":
            continue
        object_type = _TABLE_TYPES.get(str(row.get("TABLE_TYPE", "BASE TABLE")).upper(), TABLE)
        seen.add((schema, name))
        view = views.get((schema, name))
        objects.append(_object(database, schema, name, object_type, row, view, columns_by_object, view_sql_memo))
    # The embedded warehouse lists views only in INFORMATION_SCHEMA.VIEWS, real Snowflake in both.
    for (schema, name), view in views.items():
        if (schema, name) not in seen and schema != "INFORMATION_SCHEMA":
            objects.append(_object(database, schema, name, VIEW, view, view, columns_by_object, view_sql_memo))
    return objects


def _object(database, schema, name, object_type, row, view, columns_by_object, view_sql_memo) -> ObjectDefinition:
    definition = None
    comment = row.get("COMMENT")
    if view is not None:
        raw = view.get("VIEW_DEFINITION")
        raw = None if raw is None else str(raw)
        if raw is not None and raw in view_sql_memo:
            definition = view_sql_memo[raw]
        else:
            definition = canonical_sql(raw)
            if raw is not None:
                view_sql_memo[raw] = definition
        comment = comment if comment is not None else view.get("COMMENT")
    columns = tuple(sorted(columns_by_object.get((schema, name), ()), key=lambda c: c.position))
    return ObjectDefinition(
        database=database,
        schema=schema,
        name=name,
        object_type=object_type,
        table_kind=table_kind(row) if object_type == TABLE else None,
        comment=canonical_comment(comment),
        definition=definition,
        columns=columns,
    ).with_hashes()
