"""Counting a database's objects from INFORMATION_SCHEMA: a fixed number of queries per database, however
many objects it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from waldinger_assets.snowflake_sql import quote_identifier

METADATA_VIEWS = ("SCHEMATA", "TABLES", "VIEWS", "COLUMNS")


@dataclass(frozen=True)
class DatabaseInventory:
    database: str
    schemas: int
    tables: int
    views: int
    columns: int

    @property
    def objects(self) -> int:
        return self.tables + self.views


def inventory_queries(database: str) -> dict[str, str]:
    """One COUNT query per metadata view. INFORMATION_SCHEMA itself is left out of the schema count."""
    info = f"{quote_identifier(database)}.INFORMATION_SCHEMA"
    not_info = "WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"
    return {
        "SCHEMATA": f"SELECT COUNT(*) FROM {info}.SCHEMATA WHERE SCHEMA_NAME <> 'INFORMATION_SCHEMA'",
        "TABLES": f"SELECT COUNT(*) FROM {info}.TABLES {not_info} AND TABLE_TYPE <> 'VIEW'",
        "VIEWS": f"SELECT COUNT(*) FROM {info}.VIEWS {not_info}",
        "COLUMNS": f"SELECT COUNT(*) FROM {info}.COLUMNS {not_info}",
    }


def inventory_from_counts(database: str, counts: Mapping[str, int]) -> DatabaseInventory:
    return DatabaseInventory(
        database=database,
        schemas=counts["SCHEMATA"],
        tables=counts["TABLES"],
        views=counts["VIEWS"],
        columns=counts["COLUMNS"],
    )
