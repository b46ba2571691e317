"""No false positives: aliases, BCR 2025_03 type names, identifier case and view formatting are not drift."""

from __future__ import annotations

import pytest

from tests.fixtures.snowflake_rows import embedded_rows, real_snowflake_rows
from waldinger_assets.schema_drift.canonical import canonical_default, canonical_sql, canonical_type
from waldinger_assets.schema_drift.diff import diff_snapshots
from waldinger_assets.schema_drift.schema_objects import Snapshot
from waldinger_assets.schema_drift.snapshot import build_objects

TYPE_ALIASES = [
    ("TEXT", "VARCHAR(16777216)"),
    ("STRING", "VARCHAR(16777216)"),
    ("VARCHAR", "VARCHAR(16777216)"),
    ("VARCHAR(16777216)", "VARCHAR(16777216)"),
    ("varchar(20)", "VARCHAR(20)"),
    ("CHAR", "VARCHAR(1)"),
    ("INT", "NUMBER(38,0)"),
    ("INTEGER", "NUMBER(38,0)"),
    ("BIGINT", "NUMBER(38,0)"),
    ("NUMBER", "NUMBER(38,0)"),
    ("NUMBER(38, 0)", "NUMBER(38,0)"),
    ("DECIMAL(12,2)", "NUMBER(12,2)"),
    ("DOUBLE", "FLOAT"),
    ("REAL", "FLOAT"),
    ("DATETIME", "TIMESTAMP_NTZ(9)"),
    ("TIMESTAMP_NTZ", "TIMESTAMP_NTZ(9)"),
    ("TIMESTAMP_TZ(3)", "TIMESTAMP_TZ(3)"),
    ("BINARY", "BINARY(8388608)"),
    ("VARBINARY(100)", "BINARY(100)"),
    ("VARIANT", "VARIANT"),
]


@pytest.mark.parametrize(("written", "expected"), TYPE_ALIASES)
def test_type_aliases_have_one_canonical_spelling(written: str, expected: str) -> None:
    assert str(canonical_type(written)) == expected


def test_information_schema_fields_win_over_the_written_type() -> None:
    # Real Snowflake: DATA_TYPE TEXT (or VARCHAR after BCR 2025_03) with the length in its own column.
    assert str(canonical_type("TEXT", character_length=16777216)) == "VARCHAR(16777216)"
    assert str(canonical_type("VARCHAR", character_length=16777216)) == "VARCHAR(16777216)"
    assert str(canonical_type("TEXT", character_length=20)) == "VARCHAR(20)"
    assert str(canonical_type("NUMBER", numeric_precision=38, numeric_scale=0)) == "NUMBER(38,0)"
    assert str(canonical_type("TIMESTAMP_LTZ", datetime_precision=6)) == "TIMESTAMP_LTZ(6)"


@pytest.mark.parametrize(("written", "expected"), TYPE_ALIASES)
def test_element_types_of_a_structured_array_follow_the_alias_rules(written: str, expected: str) -> None:
    assert str(canonical_type(f"ARRAY({written})")) == f"ARRAY({expected})"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("ARRAY(INT)", "ARRAY(NUMBER(38,0))"),
        ("array(text)", "ARRAY(VARCHAR(16777216))"),
        ("ARRAY(ARRAY(DATETIME))", "ARRAY(ARRAY(TIMESTAMP_NTZ(9)))"),
        ("OBJECT(a INT, b STRING)", 'OBJECT("a" NUMBER(38,0),"b" VARCHAR(16777216))'),
        ('OBJECT("a b" VARCHAR(10) NOT NULL)', 'OBJECT("a b" VARCHAR(10) NOT NULL)'),
        (
            "OBJECT(inner OBJECT(x DOUBLE), tags ARRAY(INT))",
            'OBJECT("inner" OBJECT("x" FLOAT),"tags" ARRAY(NUMBER(38,0)))',
        ),
        ("MAP(VARCHAR, INT)", "MAP(VARCHAR(16777216),NUMBER(38,0))"),
        ("MAP(NUMBER(10, 0), ARRAY(TEXT))", "MAP(NUMBER(10,0),ARRAY(VARCHAR(16777216)))"),
        ("VECTOR(FLOAT, 256)", "VECTOR_FLOAT(256)"),
        ("vector(int, 16)", "VECTOR_INT(16)"),
        # semi-structured: no element types to keep
        ("ARRAY", "ARRAY"),
        ("OBJECT", "OBJECT"),
    ],
)
def test_structured_types_keep_their_element_types_canonicalised(written: str, expected: str) -> None:
    assert str(canonical_type(written)) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ARRAY(INT)", "ARRAY(VARCHAR)"),
        ("ARRAY(VARCHAR(10))", "ARRAY(VARCHAR(20))"),
        ("ARRAY(INT)", "ARRAY"),
        ("ARRAY(ARRAY(INT))", "ARRAY(ARRAY(TEXT))"),
        ("OBJECT(a INT)", "OBJECT(a VARCHAR)"),
        ("OBJECT(a INT)", "OBJECT(b INT)"),
        ("OBJECT(a INT)", "OBJECT(a INT NOT NULL)"),
        ("OBJECT(a INT, b INT)", "OBJECT(b INT, a INT)"),
        ("MAP(VARCHAR, INT)", "MAP(VARCHAR, FLOAT)"),
        ("MAP(VARCHAR, INT)", "MAP(INT, INT)"),
        ("VECTOR(FLOAT, 256)", "VECTOR(INT, 256)"),
        ("VECTOR(FLOAT, 256)", "VECTOR(FLOAT, 512)"),
        # not parsed by sqlglot: kept as written rather than cut down to ARRAY
        ("ARRAY(INT NOT NULL)", "ARRAY(VARCHAR NOT NULL)"),
    ],
)
def test_different_element_types_are_different_types(first: str, second: str) -> None:
    assert str(canonical_type(first)) != str(canonical_type(second))


def test_view_text_formatting_is_not_drift() -> None:
    variants = [
        "select id, name from orders where id > 0",
        "SELECT ID, NAME\n  FROM   ORDERS\n WHERE ID > 0;",
        'select "ID", "NAME" from "ORDERS" where ("ID" > 0) -- trailing comment',
        "create or replace view V as\n/* header */ SELECT id, name FROM orders WHERE id > 0",
    ]
    assert len({canonical_sql(v) for v in variants}) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("select 1 from t where a = 1 and (b = 2)", "select 1 from t where a = 1 and b = 2"),
        ("select 1 from t where (a = 1) or ((b = 2))", "select 1 from t where a = 1 or b = 2"),
        ("select 1 from t where a and (b and c)", "select 1 from t where (a and b) and c"),
        ("select 1 from t where (a and b) or (c and d)", "select 1 from t where a and b or c and d"),
        ("select 1 from t where (a or b) or c", "select 1 from t where a or (b or c)"),
        ("select 1 from t where x and (not y)", "select 1 from t where x and not y"),
        (
            "select 1 from t where x and (y between 1 and 2) and z",
            "select 1 from t where x and y between 1 and 2 and z",
        ),
        ("select (a) + (1), (f(b)) * 2 from t", "select a + 1, f(b) * 2 from t"),
        ("select case when (a > 0) then 1 end from t", "select case when a > 0 then 1 end from t"),
        ("select 1 from t join u on (t.id = u.id)", "select 1 from t join u on t.id = u.id"),
    ],
)
def test_redundant_parentheses_are_formatting(first: str, second: str) -> None:
    assert canonical_sql(first) == canonical_sql(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("select 1 from t where a = 1 and (b = 2 or c = 3)", "select 1 from t where a = 1 and b = 2 or c = 3"),
        ("select 1 from t where (a or b) and c", "select 1 from t where a or b and c"),
        ("select 1 from t where not (a and b)", "select 1 from t where not a and b"),
        ("select 1 from t where not (a or b)", "select 1 from t where not a or b"),
        ("select (a + b) * c from t", "select a + b * c from t"),
        ("select a - (b - c) from t", "select a - b - c from t"),
        ("select 1 from t where (a or b) = c", "select 1 from t where a or b = c"),
    ],
)
def test_parentheses_that_group_are_kept(first: str, second: str) -> None:
    assert canonical_sql(first) != canonical_sql(second)


def test_quoted_lower_case_identifiers_are_different_names() -> None:
    assert canonical_sql('select "id" from orders') != canonical_sql("select id from orders")


def test_a_real_change_in_view_logic_is_seen() -> None:
    assert canonical_sql("select id from orders where id > 0") != canonical_sql("select id from orders where id > 1")


def test_unparseable_sql_falls_back_to_normalised_text() -> None:
    weird = "SELECT $1:foo::string FROM @stage (FILE_FORMAT => 'x') -- c"
    assert canonical_sql(weird) == canonical_sql("select   $1:foo::string from @stage (file_format => 'x')")


def test_defaults_are_compared_as_sql() -> None:
    assert canonical_default("'OPEN'") == canonical_default(" 'OPEN' ")
    assert canonical_default("current_timestamp()") == canonical_default("CURRENT_TIMESTAMP()")
    assert canonical_default("0") != canonical_default("1")


def test_unquoted_identifiers_in_defaults_resolve_to_upper_case() -> None:
    assert canonical_default("my_seq.nextval") == canonical_default("MY_SEQ.NEXTVAL")
    assert canonical_default("raw.sales.my_seq.nextval") == canonical_default("RAW.SALES.MY_SEQ.NEXTVAL")
    assert canonical_default('"MY_SEQ".NEXTVAL') == canonical_default("my_seq.nextval")
    assert canonical_default("'open'") != canonical_default("'OPEN'")


def test_quoted_identifiers_in_defaults_keep_their_case() -> None:
    assert canonical_default('"my_seq".nextval') != canonical_default("my_seq.nextval")
    assert canonical_default("other_seq.nextval") != canonical_default("my_seq.nextval")


def _snapshot(rows: dict) -> Snapshot:
    objects = build_objects("RAW", rows["schemas"], rows["tables"], rows["views"], rows["columns"])
    return Snapshot.of(["RAW"], objects)


def test_real_snowflake_rows_and_embedded_rows_canonicalize_identically() -> None:
    real = _snapshot(real_snowflake_rows("TEXT"))
    after_bcr = _snapshot(real_snowflake_rows("VARCHAR"))
    embedded = _snapshot(embedded_rows())
    assert diff_snapshots(real, after_bcr) == []
    assert diff_snapshots(real, embedded) == []
    assert real.content_hash == after_bcr.content_hash == embedded.content_hash
    orders = real.objects[("RAW", "SALES", "ORDERS")]
    assert [c.data_type for c in orders.columns] == [
        "NUMBER(38,0)",
        "VARCHAR(16777216)",
        "VARCHAR(20)",
        "NUMBER(12,2)",
        "TIMESTAMP_NTZ(9)",
        "FLOAT",
    ]
    view = real.objects[("RAW", "SALES", "OPEN_ORDERS")]
    assert view.object_type == "VIEW" and view.comment == "orders not shipped yet"
    assert ("RAW", "INFORMATION_SCHEMA", "") not in real.objects
