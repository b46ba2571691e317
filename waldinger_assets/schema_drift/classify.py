"""Severity of a change: breaking (readers or writers of the object can fail or lose data), non_breaking
(existing readers and writers keep working), cosmetic (documentation only). Pure."""

from __future__ import annotations

import re

BREAKING = "breaking"
NON_BREAKING = "non_breaking"
COSMETIC = "cosmetic"

_CANONICAL = re.compile(r"^([A-Z_ ]+?)(?:\((\d+(?:,\d+)*)\))?$")
_STRUCTURED_TYPES = {"ARRAY", "MAP", "OBJECT"}
_OBJECT_FIELD = re.compile(r'^("(?:[^"]|"")*") (.*?)( NOT NULL)?$')
# Integers up to this many digits fit a FLOAT (a double) exactly.
_FLOAT_EXACT_DIGITS = 15


def _parse(data_type: str) -> tuple[str, tuple[int, ...]]:
    match = _CANONICAL.match(data_type)
    if not match:
        return data_type, ()
    parameters = tuple(int(p) for p in match.group(2).split(",")) if match.group(2) else ()
    return match.group(1), parameters


def _split_elements(data_type: str) -> tuple[str, list[str]] | None:
    """A canonical structured type as (base, elements): 'MAP(VARCHAR(10),ARRAY(FLOAT))' is ('MAP',
    ['VARCHAR(10)', 'ARRAY(FLOAT)']); None for anything else. Splits at top-level commas, outside quoted keys."""
    base, parenthesis, rest = data_type.partition("(")
    if base not in _STRUCTURED_TYPES or not parenthesis or not rest.endswith(")"):
        return None
    elements, depth, quoted, start = [], 0, False, 0
    inner = rest[:-1]
    for index, character in enumerate(inner):
        if character == '"':
            quoted = not quoted
        elif not quoted and character == "(":
            depth += 1
        elif not quoted and character == ")":
            depth -= 1
        elif not quoted and character == "," and depth == 0:
            elements.append(inner[start:index])
            start = index + 1
    elements.append(inner[start:])
    return base, elements


def _split_field(field: str) -> tuple[str, str, bool]:
    """An OBJECT field '"key" TYPE [NOT NULL]' as (key, type, nullable)."""
    match = _OBJECT_FIELD.match(field)
    if not match:
        return field, "", True
    return match.group(1), match.group(2), match.group(3) is None


def _structured_change_severity(base: str, old_elements: list[str], new_elements: list[str]) -> str:
    """A structured type widens when it keeps its shape (the same keys, in order) and every element widens."""
    if len(old_elements) != len(new_elements):
        return BREAKING
    severities = []
    for old, new in zip(old_elements, new_elements, strict=True):
        if base == "OBJECT":
            (old_key, old, was_nullable), (new_key, new, now_nullable) = _split_field(old), _split_field(new)
            if old_key != new_key:
                return BREAKING
            severities.append(nullability_change_severity(was_nullable, now_nullable))
        if old != new:
            severities.append(type_change_severity(old, new))
    return BREAKING if BREAKING in severities else NON_BREAKING


def type_change_severity(before: str, after: str) -> str:
    """Widening (every old value fits the new type unchanged) is non_breaking; anything else is breaking."""
    old_structured, new_structured = _split_elements(before), _split_elements(after)
    if old_structured and new_structured and old_structured[0] == new_structured[0]:
        return _structured_change_severity(old_structured[0], old_structured[1], new_structured[1])
    old_base, old_params = _parse(before)
    new_base, new_params = _parse(after)
    if old_base == new_base:
        if old_base.startswith("VECTOR_"):
            # A vector's dimension is its shape: a longer vector does not hold the shorter one's values.
            return NON_BREAKING if old_params == new_params else BREAKING
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
