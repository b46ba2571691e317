"""The demo warehouse's objects, generated deterministically: same seed, same objects, every machine.

Pure data: no Snowflake, no Dagster. `seed.py` turns these specs into DDL and runs it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CATALOG_SEED = 20261123

# (database, schemas); names in double quotes in Snowflake keep their case, the rest are upper-case.
DATABASE_LAYOUT: dict[str, tuple[str, ...]] = {
    "RAW": ("SALES", "CRM", "BILLING", "EVENTS", "INVENTORY"),
    "ANALYTICS": ("MARTS", "FINANCE", "MARKETING", "reporting", "PRODUCT"),
    "WALDINGER": ("LLM", "FEATURES"),
}
TABLES_PER_SCHEMA = 200
VIEWS_PER_SCHEMA = 55

# Common Snowflake column types, weighted roughly as they appear in real warehouses.
COLUMN_TYPES: tuple[tuple[str, int], ...] = (
    ("NUMBER(38,0)", 14),
    ("NUMBER(12,2)", 6),
    ("NUMBER(18,4)", 3),
    ("VARCHAR(16777216)", 10),
    ("VARCHAR(256)", 8),
    ("VARCHAR(64)", 6),
    ("FLOAT", 4),
    ("BOOLEAN", 5),
    ("DATE", 5),
    ("TIMESTAMP_NTZ(9)", 6),
    ("TIMESTAMP_TZ(9)", 2),
    ("TIME(9)", 1),
    ("VARIANT", 3),
    ("ARRAY", 1),
    ("OBJECT", 1),
    ("BINARY", 1),
)
DEFAULTS_BY_TYPE = {
    "NUMBER(38,0)": "0",
    "NUMBER(12,2)": "0",
    "BOOLEAN": "FALSE",
    "VARCHAR(64)": "'unknown'",
}

_NOUNS = (
    "customer",
    "order",
    "invoice",
    "payment",
    "shipment",
    "product",
    "account",
    "session",
    "event",
    "campaign",
    "lead",
    "contact",
    "subscription",
    "refund",
    "ticket",
    "store",
    "region",
    "supplier",
    "warehouse",
    "device",
    "user",
    "visit",
    "click",
    "plan",
    "price",
    "discount",
    "review",
    "return",
    "cart",
    "vendor",
    "employee",
)
_SUFFIXES = ("", "_history", "_daily", "_snapshot", "_log", "_stage", "_dim", "_fact", "_agg", "_map")
_COLUMN_WORDS = (
    "id",
    "name",
    "status",
    "amount",
    "total",
    "quantity",
    "created_at",
    "updated_at",
    "email",
    "phone",
    "country",
    "city",
    "code",
    "type",
    "category",
    "score",
    "rank",
    "flag",
    "source",
    "channel",
    "currency",
    "price",
    "cost",
    "margin",
    "balance",
    "segment",
    "notes",
    "payload",
    "start_date",
    "end_date",
    "version",
    "region",
    "owner",
    "priority",
    "weight",
    "rate",
    "count",
    "tier",
)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    data_type: str
    nullable: bool = True
    default: str | None = None


@dataclass(frozen=True)
class TableSpec:
    database: str
    schema: str
    name: str
    columns: tuple[ColumnSpec, ...]
    comment: str | None = None
    transient: bool = False


@dataclass(frozen=True)
class ViewSpec:
    database: str
    schema: str
    name: str
    source: TableSpec
    columns: tuple[str, ...]
    filter_column: str | None
    comment: str | None = None


@dataclass(frozen=True)
class DemoCatalog:
    tables: tuple[TableSpec, ...]
    views: tuple[ViewSpec, ...]

    @property
    def object_count(self) -> int:
        return len(self.tables) + len(self.views)

    def schemas(self) -> list[tuple[str, str]]:
        return [(database, schema) for database, schemas in DATABASE_LAYOUT.items() for schema in schemas]


def _table_name(rng: random.Random, used: set[str], lower_case: bool) -> str:
    while True:
        name = f"{rng.choice(_NOUNS)}{rng.choice(_SUFFIXES)}_{rng.randrange(1000):03d}"
        name = name if lower_case else name.upper()
        # The embedded warehouse (DuckDB) compares identifiers case-insensitively, so keep names distinct
        # regardless of case.
        if name.upper() not in used:
            used.add(name.upper())
            return name


def _columns(rng: random.Random, lower_case: bool) -> tuple[ColumnSpec, ...]:
    count = rng.randint(5, 40)
    types = [t for t, _ in COLUMN_TYPES]
    weights = [w for _, w in COLUMN_TYPES]
    columns = [ColumnSpec("ID", "NUMBER(38,0)", nullable=False)]
    used = {"ID"}
    while len(columns) < count:
        word = rng.choice(_COLUMN_WORDS)
        name = word if word.upper() not in used else f"{word}_{len(columns)}"
        if rng.random() < 0.05:
            name = f"{name}Camel"  # a quoted mixed-case column, as tools created by other teams leave behind
        elif not lower_case:
            name = name.upper()
        if name.upper() in used:
            continue
        used.add(name.upper())
        data_type = rng.choices(types, weights)[0]
        default = DEFAULTS_BY_TYPE.get(data_type) if rng.random() < 0.15 else None
        columns.append(ColumnSpec(name, data_type, nullable=rng.random() > 0.2, default=default))
    return tuple(columns)


def build_catalog(seed: int = CATALOG_SEED) -> DemoCatalog:
    """At least 3,000 tables and views across 3 databases and 12 schemas (see the module constants)."""
    rng = random.Random(seed)
    tables: list[TableSpec] = []
    views: list[ViewSpec] = []
    for database, schemas in DATABASE_LAYOUT.items():
        for schema in schemas:
            lower_case_schema = schema != schema.upper()
            used: set[str] = set()
            schema_tables = []
            for index in range(TABLES_PER_SCHEMA):
                lower_case = lower_case_schema or index % 25 == 0
                table = TableSpec(
                    database=database,
                    schema=schema,
                    name=_table_name(rng, used, lower_case),
                    columns=_columns(rng, lower_case),
                    comment=f"Demo {schema.lower()} table {index}" if rng.random() < 0.3 else None,
                    transient=rng.random() < 0.05,
                )
                schema_tables.append(table)
            tables.extend(schema_tables)
            for index in range(VIEWS_PER_SCHEMA):
                source = schema_tables[rng.randrange(len(schema_tables))]
                picked = rng.sample([c.name for c in source.columns], k=min(len(source.columns), rng.randint(2, 8)))
                name = f"V_{source.name.upper()}_{index:02d}" if not lower_case_schema else f"v_{source.name}_{index}"
                filter_column = next(
                    (c.name for c in source.columns if c.data_type == "NUMBER(38,0)" and c.name in picked), None
                )
                views.append(
                    ViewSpec(
                        database=database,
                        schema=schema,
                        name=name,
                        source=source,
                        columns=tuple(picked),
                        filter_column=filter_column,
                        comment="Demo view" if rng.random() < 0.2 else None,
                    )
                )
    return DemoCatalog(tables=tuple(tables), views=tuple(views))
