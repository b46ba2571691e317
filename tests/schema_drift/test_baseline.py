"""The baseline file: stable and reviewable, accepted whole or in part, and clear when it is broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.schema_drift.test_diff import ORDERS, col, snap, table
from waldinger_assets.schema_drift.baseline import BaselineError, accept, load_baseline, write_baseline
from waldinger_assets.schema_drift.diff import diff_snapshots
from waldinger_assets.schema_drift.model import ObjectDefinition, Snapshot

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
