"""Quoting for SQL the project writes itself. Identifiers are always quoted and values are bound, so no
metadata value (a hostile table name, say) ever reaches Snowflake as SQL."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """A Snowflake identifier exactly as stored: "ID", "reporting", "my ""odd"" name"."""
    if not name:
        raise ValueError("an identifier cannot be empty")
    return '"' + name.replace('"', '""') + '"'


def qualified_name(*parts: str) -> str:
    return ".".join(quote_identifier(part) for part in parts)


def string_literal(value: str) -> str:
    """A single-quoted Snowflake string literal, for the few places that take no bind parameter (DDL)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
