"""The baseline file: stable and reviewable, accepted whole or in part, and clear when it is broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.schema_drift.test_diff import ORDERS, col, snap, table
from waldinger_assets.schema_drift.baseline import BaselineError, accept, load_baseline, write_baseline
from waldinger_assets.schema_drift.diff import diff_snapshots
from waldinger_assets.schema_drift.schema_objects import ObjectDefinition, Snapshot

CUSTOMERS = table("CUSTOMERS", col("ID"), col("NAME", "VARCHAR(100)", 2))


def test_baseline_round_trips_and_is_stable(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_baseline(path, snap(ORDERS, CUSTOMERS))
    first = path.read_text()
    write_baseline(path, snap(CUSTOMERS, ORDERS))  # insertion order does not matter
    assert path.read_text() == first
    loaded = load_baseline(path)
    assert diff_snapshots(loaded, snap(ORDERS, CUSTOMERS)) == []
    assert json.loads(first)["format"] == 1
    # one column per line: a changed column is a one-line diff in review
    assert sum('"name": "CUSTOMER"' in line for line in first.splitlines()) == 1


def test_missing_baseline_is_none(tmp_path: Path) -> None:
    assert load_baseline(tmp_path / "nothing.json") is None


def test_corrupt_baseline_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text('{"format": 1, "databases": ["DB"], "objects": [{"database": "DB"')
    with pytest.raises(BaselineError, match=r"baseline\.json.*waldinger drift accept"):
        load_baseline(path)


def test_accepting_a_selection_leaves_other_changes_pending() -> None:
    orders_changed = table("ORDERS", *ORDERS.columns[:3])
    customers_changed = table("CUSTOMERS", col("ID"))
    current = snap(orders_changed, customers_changed)
    partial = accept(current, snap(ORDERS, CUSTOMERS), objects=["DB.S.ORDERS"])
    pending = diff_snapshots(partial, current)
    assert {c.object for c in pending} == {"DB.S.CUSTOMERS"}
    assert diff_snapshots(accept(current, partial), current) == []


def test_accepting_a_dropped_object_removes_it() -> None:
    accepted = accept(snap(CUSTOMERS), snap(ORDERS, CUSTOMERS), objects=["DB.S.ORDERS"])
    assert set(accepted.objects) == {CUSTOMERS.key}


def test_accepting_one_database_keeps_the_others() -> None:
    other = ObjectDefinition("OTHER", "S", "KEPT", "TABLE", "PERMANENT", None, None, (col("ID"),)).with_hashes()
    previous = Snapshot.of(["DB", "OTHER"], [ORDERS, other])
    accepted = accept(Snapshot.of(["DB"], [CUSTOMERS]), previous, databases=["DB"])
    assert set(accepted.objects) == {CUSTOMERS.key, other.key} and accepted.databases == ("DB", "OTHER")
    assert accepted.objects[other.key] is other


def _baseline_with(tmp_path: Path, change) -> Path:
    """A baseline file of ORDERS and CUSTOMERS, edited by `change(document)`."""
    path = tmp_path / "baseline.json"
    write_baseline(path, snap(ORDERS, CUSTOMERS))
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def _orders(document: dict) -> dict:
    return next(o for o in document["objects"] if o["name"] == "ORDERS")


# Where each edited field sits, as the error names it.
PLACES = {"column": "object DB.S.ORDERS, column CUSTOMER", "object": "object DB.S.ORDERS", "top": "top level"}


def _set(place: str, field: str, value):
    def change(document: dict) -> None:
        target = {"column": _orders(document)["columns"][1], "object": _orders(document), "top": document}[place]
        target[field] = value

    return change


@pytest.mark.parametrize(
    ("place", "field", "value", "expected"),
    [
        ("column", "nullable", "false", "true or false"),
        ("column", "nullable", 0, "true or false"),
        ("column", "position", "2", "an integer"),
        ("column", "position", True, "an integer"),
        ("column", "position", 2.0, "an integer"),
        ("column", "type", 12, "a string"),
        ("column", "default", False, "a string or null"),
        ("column", "comment", ["x"], "a string or null"),
        ("object", "comment", 5, "a string or null"),
        ("object", "object_type", None, "a string"),
        ("object", "columns", {}, "a list"),
        ("object", "definition", {"sql": "SELECT 1"}, "a string or null"),
        ("top", "databases", "DB", "a list of strings"),
        ("top", "databases", ["DB", 1], "a list of strings"),
        ("top", "taken_at", 20250304, "a string or null"),
    ],
)
def test_a_wrong_field_type_names_the_file_the_object_the_field_and_the_fix(
    tmp_path: Path, place: str, field: str, value, expected: str
) -> None:
    path = _baseline_with(tmp_path, _set(place, field, value))
    with pytest.raises(BaselineError) as raised:
        load_baseline(path)
    message = str(raised.value)
    assert message.startswith(f"The schema baseline {path} is not a valid baseline: {PLACES[place]}: field '{field}' ")
    assert f"must be {expected}, not {json.dumps(value)}." in message
    assert "Fix it in the file" in message and "re-record the baseline" in message
    assert "`waldinger drift accept`" in message


def test_a_missing_an_unknown_or_a_repeated_field_is_an_error(tmp_path: Path) -> None:
    def drop_nullable(document: dict) -> None:
        del _orders(document)["columns"][0]["nullable"]

    def misspell_nullable(document: dict) -> None:
        column = _orders(document)["columns"][0]
        column["nulable"] = column.pop("nullable")

    def repeat_a_column(document: dict) -> None:
        _orders(document)["columns"].append(_orders(document)["columns"][0])

    def repeat_an_object(document: dict) -> None:
        document["objects"].append(_orders(document))

    def add_a_string_object(document: dict) -> None:
        document["objects"].append("DB.S.X")

    cases = [
        (drop_nullable, r"object DB\.S\.ORDERS, column ID: field 'nullable' is missing \(it must be true or false\)"),
        (misspell_nullable, r"object DB\.S\.ORDERS, column ID: unknown field 'nulable'"),
        (repeat_a_column, r"object DB\.S\.ORDERS: column ID appears more than once"),
        (repeat_an_object, r"object DB\.S\.ORDERS appears more than once"),
        (add_a_string_object, r'objects\[2\]: must be an object, not "DB\.S\.X"'),
    ]
    for change, message in cases:
        with pytest.raises(BaselineError, match=rf"baseline\.json is not a valid baseline: {message}"):
            load_baseline(_baseline_with(tmp_path, change))


def test_a_baseline_that_is_not_a_json_object_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("[]")
    with pytest.raises(BaselineError, match=r"baseline\.json is not a valid baseline: the document must be an object"):
        load_baseline(path)
