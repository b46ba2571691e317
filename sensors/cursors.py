"""Sensor cursors are JSON objects with a `sequence` that numbers the sensor's requests, so run keys stay
unique even when a state comes back (a warehouse changed and changed back must be checked both times, and
Dagster never launches a run key twice)."""

from __future__ import annotations

import json

TRIGGER_TAG = "waldinger/trigger"


def load_cursor(raw: str | None) -> dict | None:
    return json.loads(raw) if raw else None


def dump_cursor(cursor: dict) -> str:
    return json.dumps(cursor, sort_keys=True, separators=(",", ":"))


def next_sequence(cursor: dict | None) -> int:
    return int((cursor or {}).get("sequence", 0)) + 1
