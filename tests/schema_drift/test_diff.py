"""Typed changes, severities and renames, on plain snapshots."""

from __future__ import annotations

import pytest

from waldinger_assets.schema_drift.canonical import canonical_type
from waldinger_assets.schema_drift.classify import type_change_severity
from waldinger_assets.schema_drift.diff import CHANGE_KINDS, diff_snapshots
from waldinger_assets.schema_drift.report import build_report
from waldinger_assets.schema_drift.schema_objects import ColumnDefinition, ObjectDefinition, Snapshot


def col(name, data_type="NUMBER(38,0)", position=1, nullable=True, default=None, comment=None):
    return ColumnDefinition(name, data_type, nullable, default, position, comment)


def table(name, *columns, schema="S", object_type="TABLE", comment=None, definition=None):
    return ObjectDefinition(
        "DB",
        schema,
        name,
        object_type,
        "PERMANENT" if object_type == "TABLE" else None,
        comment,
        definition,
        tuple(columns),
    ).with_hashes()


def snap(*objects):
    return Snapshot.of(["DB"], objects)


ORDERS = table(
    "ORDERS",
    col("ID", position=1, nullable=False),
    col("CUSTOMER", "VARCHAR(100)", 2),
    col("AMOUNT", "NUMBER(12,2)", 3),
    col("NOTE", "VARCHAR(16777216)", 4),
)


def kinds(changes):
    return [(c.change, c.column, c.severity) for c in changes]


def test_identical_snapshots_have_no_changes() -> None:
    assert diff_snapshots(snap(ORDERS), snap(ORDERS)) == []


def test_column_changes_are_typed_with_severity() -> None:
    after = table(
        "ORDERS",
        col("ID", position=1, nullable=False),
        col("CUSTOMER", "VARCHAR(50)", 2, nullable=False),
        col("AMOUNT", "NUMBER(14,2)", 3, default="0"),
        col("NOTE", "VARCHAR(16777216)", 4, comment="free text"),
        col("REGION", "VARCHAR(10)", 5),
        col("CODE", "VARCHAR(10)", 6, nullable=False),
    )
    changes = diff_snapshots(snap(ORDERS), snap(after))
    assert sorted(kinds(changes)) == sorted(
        [
            ("type_changed", "CUSTOMER", "breaking"),
            ("nullability_changed", "CUSTOMER", "breaking"),
            ("type_changed", "AMOUNT", "non_breaking"),
            ("default_changed", "AMOUNT", "non_breaking"),
            ("comment_changed", "NOTE", "cosmetic"),
            ("column_added", "REGION", "non_breaking"),
            ("column_added", "CODE", "breaking"),
        ]
    )
    narrowing = next(c for c in changes if c.change == "type_changed" and c.column == "CUSTOMER")
    assert (narrowing.object, narrowing.object_type, narrowing.before, narrowing.after) == (
        "DB.S.ORDERS",
        "TABLE",
        "VARCHAR(100)",
        "VARCHAR(50)",
    )


def test_dropped_column_is_breaking_and_later_columns_do_not_report_position_noise() -> None:
    after = table(
        "ORDERS",
        col("ID", position=1, nullable=False),
        col("AMOUNT", "NUMBER(12,2)", 2),
        col("NOTE", "VARCHAR(16777216)", 3),
    )
    assert kinds(diff_snapshots(snap(ORDERS), snap(after))) == [("column_dropped", "CUSTOMER", "breaking")]


def test_column_rename_is_one_change_not_a_drop_and_an_add() -> None:
    after = table(
        "ORDERS",
        col("ID", position=1, nullable=False),
        col("CUSTOMER_NAME", "VARCHAR(100)", 2),
        col("AMOUNT", "NUMBER(12,2)", 3),
        col("NOTE", "VARCHAR(16777216)", 4),
    )
    (change,) = diff_snapshots(snap(ORDERS), snap(after))
    assert (change.change, change.column, change.before, change.after, change.severity) == (
        "column_renamed",
        "CUSTOMER_NAME",
        "CUSTOMER",
        "CUSTOMER_NAME",
        "breaking",
    )


def test_reordered_columns_report_only_the_moved_one() -> None:
    after = table(
        "ORDERS",
        col("NOTE", "VARCHAR(16777216)", 1),
        col("ID", position=2, nullable=False),
        col("CUSTOMER", "VARCHAR(100)", 3),
        col("AMOUNT", "NUMBER(12,2)", 4),
    )
    assert kinds(diff_snapshots(snap(ORDERS), snap(after))) == [("position_changed", "NOTE", "non_breaking")]


def test_object_rename_is_recognised_by_identical_columns() -> None:
    renamed = table("ORDERS_V2", *ORDERS.columns)
    other = table("CUSTOMERS", col("ID"))
    changes = diff_snapshots(snap(ORDERS, other), snap(renamed))
    assert [(c.change, c.object, c.before, c.after, c.severity) for c in changes] == [
        ("object_dropped", "DB.S.CUSTOMERS", "DB.S.CUSTOMERS", None, "breaking"),
        ("object_renamed", "DB.S.ORDERS_V2", "DB.S.ORDERS", "DB.S.ORDERS_V2", "breaking"),
    ]


def test_added_objects_are_non_breaking_and_view_logic_changes_are_reported() -> None:
    view = table("V", col("ID"), object_type="VIEW", definition='SELECT "ID" FROM "ORDERS"')
    changed = table("V", col("ID"), object_type="VIEW", definition='SELECT "ID" FROM "ORDERS" WHERE "ID" > 0')
    new = table("NEW_TABLE", col("X"))
    changes = diff_snapshots(snap(ORDERS, view), snap(ORDERS, changed, new))
    assert kinds(changes) == [("object_added", None, "non_breaking"), ("view_definition_changed", None, "non_breaking")]


def test_table_comment_is_cosmetic() -> None:
    after = table("ORDERS", *ORDERS.columns, comment="documented")
    assert kinds(diff_snapshots(snap(ORDERS), snap(after))) == [("comment_changed", None, "cosmetic")]


def test_type_widening_and_narrowing() -> None:
    assert type_change_severity("VARCHAR(10)", "VARCHAR(16777216)") == "non_breaking"
    assert type_change_severity("VARCHAR(16777216)", "VARCHAR(10)") == "breaking"
    assert type_change_severity("NUMBER(10,2)", "NUMBER(12,2)") == "non_breaking"
    assert type_change_severity("NUMBER(10,2)", "NUMBER(10,4)") == "breaking"
    assert type_change_severity("NUMBER(10,0)", "FLOAT") == "non_breaking"
    assert type_change_severity("NUMBER(38,0)", "FLOAT") == "breaking"
    assert type_change_severity("TIMESTAMP_NTZ(3)", "TIMESTAMP_NTZ(9)") == "non_breaking"
    assert type_change_severity("TIMESTAMP_NTZ(9)", "TIMESTAMP_TZ(9)") == "breaking"
    assert type_change_severity("NUMBER(38,0)", "VARCHAR(16777216)") == "breaking"


@pytest.mark.parametrize(
    ("before", "after", "severity"),
    [
        ("ARRAY(INT)", "ARRAY(VARCHAR)", "breaking"),
        ("ARRAY(VARCHAR(10))", "ARRAY(VARCHAR(20))", "non_breaking"),
        ("ARRAY(VARCHAR(20))", "ARRAY(VARCHAR(10))", "breaking"),
        ("ARRAY(INT)", "ARRAY", "breaking"),
        ("OBJECT(a NUMBER(10,2), b TEXT)", "OBJECT(a NUMBER(12,2), b TEXT)", "non_breaking"),
        ("OBJECT(a INT)", "OBJECT(a VARCHAR)", "breaking"),
        ("OBJECT(a INT)", "OBJECT(b INT)", "breaking"),
        ("OBJECT(a INT)", "OBJECT(a INT, b INT)", "breaking"),
        ("OBJECT(a INT)", "OBJECT(a INT NOT NULL)", "breaking"),
        ("OBJECT(a INT NOT NULL)", "OBJECT(a INT)", "non_breaking"),
        ("OBJECT(o OBJECT(x VARCHAR(5)))", "OBJECT(o OBJECT(x VARCHAR(50)))", "non_breaking"),
        ("MAP(VARCHAR, NUMBER(10,0))", "MAP(VARCHAR, FLOAT)", "non_breaking"),
        ("MAP(VARCHAR, NUMBER(38,0))", "MAP(VARCHAR, FLOAT)", "breaking"),
        ("VECTOR(FLOAT, 256)", "VECTOR(FLOAT, 512)", "breaking"),
        ("VECTOR(FLOAT, 256)", "VECTOR(INT, 256)", "breaking"),
    ],
)
def test_a_type_change_inside_a_structured_type_is_classified(before: str, after: str, severity: str) -> None:
    def orders(tags_type: str) -> ObjectDefinition:
        return table("ORDERS", col("ID"), col("TAGS", str(canonical_type(tags_type)), 2))

    (change,) = diff_snapshots(snap(orders(before)), snap(orders(after)))
    assert (change.change, change.column, change.severity) == ("type_changed", "TAGS", severity)


def test_the_same_structured_type_spelled_differently_is_no_change() -> None:
    def orders(tags_type: str) -> ObjectDefinition:
        return table("ORDERS", col("ID"), col("TAGS", str(canonical_type(tags_type)), 2))

    assert diff_snapshots(snap(orders("ARRAY(INT)")), snap(orders("array(NUMBER(38, 0))"))) == []
    assert diff_snapshots(snap(orders("OBJECT(a TEXT)")), snap(orders("OBJECT(a VARCHAR(16777216))"))) == []


def test_report_json_follows_the_contract_and_flags_contract_objects() -> None:
    after = table(
        "ORDERS",
        col("ID", position=1, nullable=False),
        col("AMOUNT", "NUMBER(12,2)", 2),
        col("NOTE", "VARCHAR(16777216)", 3),
    )
    report = build_report(snap(ORDERS), snap(after), contract_objects=["DB.S.ORDERS"])
    document = report.to_json()
    assert document["objects"] == 1
    (change,) = document["changes"]
    assert set(change) == {"object", "object_type", "change", "column", "before", "after", "severity"}
    assert change["change"] in CHANGE_KINDS
    assert report.counts()["contract_breaking"] == 1
    assert "| breaking (contract) | DB.S.ORDERS |" in report.markdown()


def test_no_baseline_reports_nothing_and_says_so() -> None:
    report = build_report(None, snap(ORDERS), contract_objects=["DB.S.ORDERS"])
    assert report.changes == () and report.to_json()["baseline"] == "missing"
    assert "waldinger drift accept" in report.markdown()


def test_a_database_left_out_of_the_snapshot_is_not_dropped() -> None:
    other_db = ObjectDefinition("OTHER", "S", "T", "TABLE", "PERMANENT", None, None, (col("ID"),)).with_hashes()
    baseline = Snapshot.of(["DB", "OTHER"], [ORDERS, other_db])
    assert build_report(baseline, snap(ORDERS)).changes == ()
