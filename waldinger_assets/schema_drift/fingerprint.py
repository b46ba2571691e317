"""A cheap fingerprint of the watched databases' definitions, for the schema change sensor: ONE query per
database, aggregated in the warehouse, so a tick reads a few rows however many objects there are.

LAST_ALTERED (and LAST_DDL) would be cheaper still on Snowflake, but the embedded warehouse reports 1970 for
every object, so the fingerprint hashes what the snapshot compares instead: schema, table, view and column
definitions. Volatile figures (row counts, bytes, LAST_ALTERED) are left out so loading data is not a change.

Each aggregate is COUNT(*) and SUM(MOD(HASH(...), a 32-bit prime)): an exact integer on Snowflake and on the
embedded warehouse alike (both sums stay below 2**53 up to two million rows), and independent of row order.
The hashes differ between Snowflake and the embedded warehouse; a fingerprint is only compared with one taken
by the same warehouse.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from resources.snowflake_sql import quote_identifier

HASH_MODULUS = 4294967291  # the largest prime below 2**32

# (INFORMATION_SCHEMA view, hashed columns, filter): what a drift report compares, nothing that moves with data.
FINGERPRINTED_VIEWS = (
    (
        "COLUMNS",
        "TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, "
        "NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, COLUMN_DEFAULT, COMMENT",
        "WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA'",
    ),
    ("TABLES", "TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, COMMENT", "WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"),
    ("VIEWS", "TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION, COMMENT", "WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"),
    ("SCHEMATA", "SCHEMA_NAME, COMMENT", ""),
)


def fingerprint_sql(database: str) -> str:
    """One statement returning one row: `<count>:<hash sum>` per INFORMATION_SCHEMA view of `database`."""
    info = f"{quote_identifier(database)}.INFORMATION_SCHEMA"
    parts = [
        f"(SELECT COUNT(*) || ':' || COALESCE(SUM(MOD(HASH({columns}), {HASH_MODULUS})), 0) FROM {info}.{view} {where})"
        f" AS {view}"
        for view, columns, where in FINGERPRINTED_VIEWS
    ]
    return "SELECT " + ", ".join(parts)


def _integer_text(value) -> str:
    """`12:345` whatever numeric type the driver returned the sum as (the embedded warehouse gives floats)."""
    count, _, total = str(value).partition(":")
    return f"{count}:{int(float(total)) if total else 0}"


def database_fingerprints(connection, databases: list[str]) -> dict[str, str]:
    """{database: fingerprint} with one query per database."""
    cursor = connection.cursor()
    fingerprints = {}
    for database in databases:
        cursor.execute(fingerprint_sql(database))
        row = cursor.fetchone()
        fingerprints[database] = "|".join(_integer_text(value) for value in row)
    return fingerprints


def baseline_fingerprint(path: Path) -> str:
    """The baseline's content hash ("missing" without one): accepting drift changes what the gate decides."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"
