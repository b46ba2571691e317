"""Severity of a change: breaking (readers or writers of the object can fail or lose data), non_breaking
(existing readers and writers keep working), cosmetic (documentation only). Pure."""

from __future__ import annotations

import re

BREAKING = "breaking"
NON_BREAKING = "non_breaking"
COSMETIC = "cosmetic"

_CANONICAL = re.compile(r"^([A-Z_ ]+?)(?:\((\d+(?:,\d+)*)\))?$")
# Integers up to this many digits fit a FLOAT (a double) exactly.
_FLOAT_EXACT_DIGITS = 15


def _parse(data_type: str) -> tuple[str, tuple[int, ...]]:
    match = _CANONICAL.match(data_type)
    if not match:
        return data_type, ()
    parameters = tuple(int(p) for p in match.group(2).split(",")) if match.group(2) else ()
    return match.group(1), parameters


def type_change_severity(before: str, after: str) -> str:
    """Widening (every old value fits the new type unchanged) is non_breaking; anything else is breaking."""
    old_base, old_params = _parse(before)
    new_base, new_params = _parse(after)
    if old_base == new_base:
        if old_base == "NUMBER" and len(old_params) == 2 and len(new_params) == 2:
            (old_precision, old_scale), (new_precision, new_scale) = old_params, new_params
            widening = new_scale >= old_scale and new_precision - new_scale >= old_precision - old_scale
            return NON_BREAKING if widening else BREAKING
        if len(old_params) == 1 and len(new_params) == 1:
            # VARCHAR/BINARY length, TIMESTAMP/TIME fractional-second precision
            return NON_BREAKING if new_params[0] >= old_params[0] else BREAKING
        return NON_BREAKING if old_params == new_params else BREAKING
    if old_base == "NUMBER" and new_base == "FLOAT" and len(old_params) == 2:
        precision, scale = old_params
        return NON_BREAKING if scale == 0 and precision <= _FLOAT_EXACT_DIGITS else BREAKING
    return BREAKING


def nullability_change_severity(was_nullable: bool, now_nullable: bool) -> str:
    """NOT NULL added breaks writers that send NULLs; dropping it breaks nobody."""
    return BREAKING if was_nullable and not now_nullable else NON_BREAKING


def column_added_severity(nullable: bool, default: str | None) -> str:
    """A NOT NULL column without a default breaks every INSERT that does not name it."""
    return BREAKING if not nullable and default is None else NON_BREAKING
