"""Sensors and schedules that start runs (schema changes, new model versions, new input data)."""

from __future__ import annotations


def all_sensors() -> list:
    return []


def all_schedules() -> list:
    return []
