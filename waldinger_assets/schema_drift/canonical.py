"""Canonical forms of Snowflake metadata, so that only real differences count as drift.

Pure: plain values in, plain values out; no Snowflake, no Dagster. The rules:
- types: every alias maps to one spelling with its parameters made explicit (TEXT = STRING = VARCHAR =
  VARCHAR(16777216); INT = INTEGER = NUMBER(38,0); DATA_TYPE reported as TEXT or VARCHAR, per BCR 2025_03);
  structured types (ARRAY(T), OBJECT(k T, ...), MAP(K, V)) are parsed with sqlglot and keep their element
  types, canonical by the same rules (ARRAY(INT) = ARRAY(NUMBER(38,0)) != ARRAY(VARCHAR));
- SQL text (view definitions, column defaults): parsed with sqlglot's Snowflake dialect and printed back in one
  style, so whitespace, comments, keyword case, the quoting of upper-case identifiers and parentheses that do
  not change grouping (WHERE (a) AND (b = 1)) are not drift;
- comments: empty and missing are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

MAX_VARCHAR_LENGTH = 16_777_216
DEFAULT_BINARY_LENGTH = 8_388_608
DEFAULT_FRACTIONAL_SECONDS = 9

_TEXT_TYPES = {"TEXT", "VARCHAR", "STRING", "CHAR", "CHARACTER", "NCHAR", "NVARCHAR", "NVARCHAR2", "CHAR VARYING"}
_INTEGER_TYPES = {"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"}
_NUMBER_TYPES = {"NUMBER", "DECIMAL", "NUMERIC", "FIXED"}
_FLOAT_TYPES = {"FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "DOUBLE PRECISION", "REAL", "REAL_"}
_BINARY_TYPES = {"BINARY", "VARBINARY"}
_TIMESTAMP_TYPES = {
    "TIMESTAMP_NTZ": "TIMESTAMP_NTZ",
    "TIMESTAMPNTZ": "TIMESTAMP_NTZ",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP_NTZ",
    "DATETIME": "TIMESTAMP_NTZ",
    # Snowflake's TIMESTAMP follows TIMESTAMP_TYPE_MAPPING, NTZ unless an account changes it.
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "TIMESTAMP_LTZ": "TIMESTAMP_LTZ",
    "TIMESTAMPLTZ": "TIMESTAMP_LTZ",
    "TIMESTAMP WITH LOCAL TIME ZONE": "TIMESTAMP_LTZ",
    "TIMESTAMP_TZ": "TIMESTAMP_TZ",
    "TIMESTAMPTZ": "TIMESTAMP_TZ",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP_TZ",
}
_TYPE_WITH_PARAMETERS = re.compile(r"^\s*([A-Za-z_ ]+?)\s*(?:\(\s*([^)]*)\))?\s*$")
_NUMERIC_PARAMETERS = re.compile(r"^[\d\s,]*$")
_STRUCTURED_TYPES = {
    exp.DataType.Type.ARRAY: "ARRAY",
    exp.DataType.Type.MAP: "MAP",
    exp.DataType.Type.OBJECT: "OBJECT",
    exp.DataType.Type.STRUCT: "OBJECT",
}

# Parents whose own syntax delimits the parenthesised part on both sides: WHERE (...) GROUP BY,
# CASE WHEN (...) THEN (...) END, ((...)).
_DELIMITING_PARENTS = (exp.Where, exp.Having, exp.Qualify, exp.Case, exp.If, exp.Paren)
# Operators that sqlglot models as functions (And, Or, RegexpLike, Collate, ...) are not atoms.
_OPERATORS = (exp.Connector, exp.Binary, exp.Predicate, exp.Unary)
_ATOMS = (exp.Column, exp.Literal, exp.Boolean, exp.Null, exp.Func, exp.Subquery, exp.Paren)


@dataclass(frozen=True)
class CanonicalType:
    """A column type with its parameters explicit: NUMBER(38,0), VARCHAR(16777216), TIMESTAMP_NTZ(9), FLOAT;
    a structured type with its canonical elements: ARRAY(NUMBER(38,0)), OBJECT("a" VARCHAR(10) NOT NULL),
    MAP(VARCHAR(16777216),FLOAT)."""

    base: str
    parameters: tuple[int, ...] = ()
    elements: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.elements:
            return f"{self.base}({','.join(self.elements)})"
        if not self.parameters:
            return self.base
        return f"{self.base}({','.join(str(p) for p in self.parameters)})"


def _as_int(value) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def canonical_type(
    data_type: str,
    character_length: int | None = None,
    numeric_precision: int | None = None,
    numeric_scale: int | None = None,
    datetime_precision: int | None = None,
) -> CanonicalType:
    """The canonical type of an INFORMATION_SCHEMA.COLUMNS row (or of a type written as text, e.g. 'INT',
    'VARCHAR(10)', 'NUMBER(12, 2)', 'ARRAY(INT)', when the separate length/precision fields are not given)."""
    structured = _structured_type(data_type or "")
    if structured is not None:
        return _canonical_structured(structured)
    return _canonical_scalar(data_type, character_length, numeric_precision, numeric_scale, datetime_precision)


def _structured_type(data_type: str) -> exp.DataType | None:
    """The parsed type when `data_type` is an ARRAY, OBJECT or MAP with element types, else None."""
    if "(" not in data_type:
        return None
    try:
        # Strict parsing: DataType.build ignores what follows a type ('ARRAY(INT) x' would be ARRAY(INT)).
        parsed = sqlglot.parse_one(data_type, read="snowflake", into=exp.DataType)
    except SqlglotError:
        return None
    return parsed if parsed.this in _STRUCTURED_TYPES and parsed.expressions else None


def _canonical_structured(data_type: exp.DataType) -> CanonicalType:
    return CanonicalType(
        _STRUCTURED_TYPES[data_type.this], elements=tuple(_canonical_element(e) for e in data_type.expressions)
    )


def _canonical_element(element: exp.Expression) -> str:
    """One element of a structured type: an element, key or value type, or an OBJECT field `"key" TYPE`."""
    if isinstance(element, exp.ColumnDef):
        # Keys are kept exactly as written, quoted; OBJECT(a INT) and OBJECT(A INT) count as different keys.
        key = element.name.replace('"', '""')
        constraints = [c.sql(dialect="snowflake") for c in element.args.get("constraints") or ()]
        return " ".join([f'"{key}"', _canonical_element(element.args["kind"]), *constraints])
    if isinstance(element, exp.DataType):
        if element.this in _STRUCTURED_TYPES and element.expressions:
            return str(_canonical_structured(element))
        # sqlglot spells scalar types by names the alias rules below know (DECIMAL(38, 0), TIMESTAMPNTZ, DOUBLE).
        return str(_canonical_scalar(element.sql(dialect="snowflake")))
    return " ".join(element.sql(dialect="snowflake").upper().split())


def _canonical_scalar(
    data_type: str | None,
    character_length: int | None = None,
    numeric_precision: int | None = None,
    numeric_scale: int | None = None,
    datetime_precision: int | None = None,
) -> CanonicalType:
    match = _TYPE_WITH_PARAMETERS.match(data_type or "")
    base = " ".join(match.group(1).upper().split()) if match else ""
    if not match or (base != "VECTOR" and not _NUMERIC_PARAMETERS.match(match.group(2) or "")):
        # Not a scalar type (e.g. ARRAY(INT NOT NULL), which sqlglot does not parse): kept as written, not
        # cut down to its name, so a change of element type still shows.
        return CanonicalType(" ".join((data_type or "").upper().split()))
    written = [int(p) for p in re.findall(r"\d+", match.group(2) or "")]
    character_length = _as_int(character_length)
    numeric_precision = _as_int(numeric_precision)
    numeric_scale = _as_int(numeric_scale)
    datetime_precision = _as_int(datetime_precision)

    if base in _TEXT_TYPES:
        length = character_length or (written[0] if written else None)
        if length is None and base in {"CHAR", "CHARACTER", "NCHAR"}:
            length = 1
        return CanonicalType("VARCHAR", (length or MAX_VARCHAR_LENGTH,))
    if base in _INTEGER_TYPES:
        return CanonicalType("NUMBER", (38, 0))
    if base in _NUMBER_TYPES:
        precision = numeric_precision if numeric_precision is not None else (written[0] if written else 38)
        scale = numeric_scale if numeric_scale is not None else (written[1] if len(written) > 1 else 0)
        return CanonicalType("NUMBER", (precision, scale))
    if base in _FLOAT_TYPES:
        return CanonicalType("FLOAT")
    if base in _BINARY_TYPES:
        length = character_length or (written[0] if written else None)
        return CanonicalType("BINARY", (length or DEFAULT_BINARY_LENGTH,))
    if base in _TIMESTAMP_TYPES:
        precision = datetime_precision if datetime_precision is not None else (written[0] if written else None)
        return CanonicalType(_TIMESTAMP_TYPES[base], (DEFAULT_FRACTIONAL_SECONDS if precision is None else precision,))
    if base == "TIME":
        precision = datetime_precision if datetime_precision is not None else (written[0] if written else None)
        return CanonicalType("TIME", (DEFAULT_FRACTIONAL_SECONDS if precision is None else precision,))
    if base == "BOOL":
        return CanonicalType("BOOLEAN")
    if base == "VECTOR" and match.group(2):
        # VECTOR(FLOAT, 256): keep the element type in the name, the dimension as the parameter. Its elements are
        # 32-bit INT or FLOAT, so they are named by kind (INTEGER = INT), not as NUMBER(38,0).
        element, _, dimension = match.group(2).partition(",")
        element_type = _canonical_scalar(element)
        kind = {"NUMBER": "INT"}.get(element_type.base, element_type.base)
        return CanonicalType(f"VECTOR_{kind}", tuple(int(p) for p in re.findall(r"\d+", dimension)))
    return CanonicalType(base, tuple(written))


def canonical_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    comment = str(comment)
    return comment if comment.strip() else None


def canonical_nullable(is_nullable) -> bool:
    if isinstance(is_nullable, bool):
        return is_nullable
    return str(is_nullable).strip().upper() in {"YES", "Y", "TRUE", "1"}


def _strip_sql_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    return re.sub(r"--[^\n]*", " ", sql)


def _fallback_sql(sql: str) -> str:
    """For SQL sqlglot cannot parse: drop comments, collapse whitespace, upper-case outside string literals."""
    parts = re.split(r"('(?:[^']|'')*')", _strip_sql_comments(sql))
    cased = [part if part.startswith("'") else part.upper() for part in parts]
    return " ".join("".join(cased).split()).rstrip(";").strip()


def _normalized_expression(sql: str) -> exp.Expression:
    statements = [s for s in sqlglot.parse(sql, read="snowflake") if s is not None]
    if len(statements) != 1:
        raise ValueError("expected one statement")
    expression = statements[0]
    if isinstance(expression, exp.Create):
        # A view's text is its whole CREATE statement; only the query defines the view's content.
        expression = expression.expression
    if expression is None:
        raise ValueError("no query")
    return _without_redundant_parentheses(_resolved_identifiers(expression))


def _without_redundant_parentheses(expression: exp.Expression) -> exp.Expression:
    """The expression without the parentheses that do not change how it groups: around a whole condition
    (WHERE (a AND b)), around one predicate of an AND/OR chain (a AND (b = 1)), around a chain inside one of
    higher or equal precedence ((a AND b) OR c), around a column, literal or function call, and doubled ones.
    a AND (b OR c) and (a + b) * c keep theirs."""
    # Innermost first, so ((x)) is seen as (x) by the time its outer pair is judged.
    for paren in reversed(list(expression.find_all(exp.Paren, bfs=False))):
        if _is_redundant(paren):
            paren.replace(paren.this)
    return expression


def _is_redundant(paren: exp.Paren) -> bool:
    inner, parent = paren.this, paren.parent
    if isinstance(parent, _DELIMITING_PARENTS) or (isinstance(parent, exp.Join) and paren.arg_key == "on"):
        return True
    if isinstance(inner, _ATOMS) and not isinstance(inner, _OPERATORS):
        return True
    if isinstance(parent, exp.And):
        # AND binds tighter than OR: a AND (b OR c) needs its parentheses, a AND (b AND c) does not.
        return not isinstance(inner, exp.Connector) or isinstance(inner, exp.And)
    if isinstance(parent, exp.Or):
        return not isinstance(inner, exp.Connector) or isinstance(inner, (exp.And, exp.Or))
    return False


def _resolved_identifiers(expression: exp.Expression) -> exp.Expression:
    # Unquoted identifiers resolve to upper case in Snowflake; quoted ones keep their case.
    return normalize_identifiers(expression, dialect="snowflake")


def _printed(expression: exp.Expression) -> str:
    """Identifiers always quoted (so "ORDERS" = orders), keywords upper-case, no comments."""
    return expression.sql(dialect="snowflake", identify=True, comments=False)


def canonical_sql(sql: str | None) -> str | None:
    """One spelling for equivalent SQL text: identifiers always quoted with their resolved case, keywords
    upper-case, single spaces, no comments, no trailing semicolon."""
    if sql is None or not str(sql).strip():
        return None
    try:
        return _printed(_normalized_expression(str(sql)))
    except Exception:  # sqlglot raises several error types; any failure falls back to text normalisation
        return _fallback_sql(str(sql))


def canonical_default(default: str | None) -> str | None:
    """A column default in the same spelling as view SQL: my_seq.nextval = MY_SEQ.NEXTVAL != "my_seq".nextval."""
    if default is None or not str(default).strip():
        return None
    try:
        return _printed(_resolved_identifiers(sqlglot.parse_one(str(default), read="snowflake")))
    except Exception:  # as in canonical_sql
        return _fallback_sql(str(default))
