"""View text over a public query set: the 23 TPC-H views, reformatted the ways people rewrite SQL without
changing it, canonicalise to their original's form; real changes in meaning do not.

Real Snowflake stores a view's CREATE statement as written, so every one of these reformattings reaches the
snapshot; the embedded warehouse re-prints view text, so the local path never sees them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.fixtures.tpch_queries import TPCH_VIEWS
from waldinger_assets.schema_drift.canonical import canonical_sql

_STRING_LITERAL = re.compile(r"('(?:[^']|'')*')")
_TPCH_IDENTIFIER = re.compile(
    r"\b((?:ps|[locpsnr])_[a-z]+|lineitem|orders|customer|part|supplier|partsupp|nation|region|revenue0)\b"
)
_QUALIFIED_COLUMN = re.compile(r"(?<![\w.\"])((?:[a-z]\w*\.)?(?:ps|[locpsnr])_[a-z]+)\b")
_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:\.\d+)?)(?![\w.])")
_CLAUSE_AFTER_CONDITION = re.compile(r"\b(?:group\s+by|order\s+by|having|limit|qualify)\b")


def _split_header(view: str) -> tuple[str, str]:
    """('create or replace view X as', the query)."""
    header, _, body = view.partition("\n")
    return header, body


def _outside_literals(sql: str, change: Callable[[str], str]) -> str:
    return "".join(part if _STRING_LITERAL.fullmatch(part) else change(part) for part in _STRING_LITERAL.split(sql))


def _on_query(change: Callable[[str], str]) -> Callable[[str], str]:
    """A reformatting of the query only: the CREATE header keeps its mandatory AS."""

    def reformat(view: str) -> str:
        header, body = _split_header(view)
        return f"{header}\n{change(body)}"

    return reformat


def _one_line(sql: str) -> str:
    return _outside_literals(sql, lambda part: re.sub(r"\s+", " ", part))


def _token_per_line(sql: str) -> str:
    return _outside_literals(sql, lambda part: re.sub(r"[ \t]+", "\r\n\t\t", part))


def _upper_case(sql: str) -> str:
    return _outside_literals(sql, str.upper)


def _capitalised_words(sql: str) -> str:
    return _outside_literals(sql, lambda part: re.sub(r"[a-z_]+", lambda m: m.group(0).capitalize(), part))


def _with_comments(view: str) -> str:
    header, body = _split_header(view)
    lines = [
        f"{line} -- line {index}, it says why" if line.strip() else line for index, line in enumerate(body.split("\n"))
    ]
    commented = "\n".join(lines).replace("select -- ", "select /* the columns */ -- ")
    return f"{header}\n/* TPC-H, as the benchmark defines it */\n{commented}"


def _predicate_lines(body: str) -> list[tuple[int, str, str, str]]:
    """(line index, indentation, connective, predicate) of each predicate that starts a line: the first one
    after WHERE/HAVING, and those after a line-leading AND/OR."""
    lines = body.split("\n")
    found = []
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)(and |or |)(.*\S)\s*$", line)
        previous = lines[index - 1].strip() if index else ""
        if match and (match.group(2) or previous in ("where", "having")):
            found.append((index, match.group(1), match.group(2), match.group(3)))
    return found


def _is_whole(predicate: str) -> bool:
    return predicate.count("(") == predicate.count(")") and not predicate.endswith("(")


def _parenthesised_predicates(body: str, opening: str = "(", closing: str = ")") -> str:
    """Each single-line predicate of an AND/OR chain in parentheses: `and (p_size = 15)`."""
    lines = body.split("\n")
    for index, indentation, connective, predicate in _predicate_lines(body):
        if _is_whole(predicate):
            lines[index] = f"{indentation}{connective}{opening}{predicate}{closing}"
    return "\n".join(lines)


def _parenthesised_operands(body: str) -> str:
    """Columns and numbers in predicates in parentheses: `(l_quantity) < (24)`."""
    lines = body.split("\n")
    for index, indentation, connective, predicate in _predicate_lines(body):

        def wrap(part: str) -> str:
            return _NUMBER.sub(r"(\1)", _QUALIFIED_COLUMN.sub(r"(\1)", part))

        lines[index] = f"{indentation}{connective}{_outside_literals(predicate, wrap)}"
    return "\n".join(lines)


def _parenthesised_conditions(body: str) -> str:
    """Every WHERE and HAVING condition in parentheses as a whole: `where (a and b) group by`."""
    masked = _STRING_LITERAL.sub(lambda m: "'" + "x" * (len(m.group(0)) - 2) + "'", body)
    inserts: list[tuple[int, str]] = []
    for keyword in re.finditer(r"\b(?:where|having)\b", masked):
        depth, end = 0, len(masked)
        for position in range(keyword.end(), len(masked)):
            character = masked[position]
            if character == "(":
                depth += 1
            elif character == ")" and depth == 0:
                end = position
                break
            elif character == ")":
                depth -= 1
            elif depth == 0 and _CLAUSE_AFTER_CONDITION.match(masked, position):
                end = position
                break
        inserts += [(keyword.end(), " ("), (end, ") ")]
    for position, text in sorted(inserts, reverse=True):
        body = body[:position] + text + body[position:]
    return body


def _quoted_identifiers(sql: str) -> str:
    return _outside_literals(sql, lambda part: _TPCH_IDENTIFIER.sub(lambda m: f'"{m.group(1).upper()}"', part))


def _without_optional_as(sql: str) -> str:
    return _outside_literals(sql, lambda part: re.sub(r"\bas\s+", "", part))


def _everything_at_once(view: str) -> str:
    reformat = _on_query(
        lambda body: _without_optional_as(
            _quoted_identifiers(_parenthesised_conditions(_parenthesised_predicates(_parenthesised_operands(body))))
        )
    )
    return _upper_case(_with_comments(reformat(view)))


REFORMATTINGS: dict[str, Callable[[str], str]] = {
    "whitespace: one line": _one_line,
    "whitespace: every token on its own line, tabs, CRLF": _token_per_line,
    "keyword case: upper": _upper_case,
    "keyword case: capitalised": _capitalised_words,
    "comments": _with_comments,
    "parentheses around single predicates in AND/OR chains": _on_query(_parenthesised_predicates),
    "double parentheses around single predicates": _on_query(lambda body: _parenthesised_predicates(body, "((", "))")),
    "parentheses around whole conditions": _on_query(_parenthesised_conditions),
    "parentheses around columns and numbers": _on_query(_parenthesised_operands),
    "quoted upper-case identifiers": _on_query(_quoted_identifiers),
    "no optional AS": _on_query(_without_optional_as),
    "all of these at once": _everything_at_once,
}


@pytest.mark.parametrize("name", TPCH_VIEWS)
def test_a_reformatted_tpch_view_is_not_drift(name: str) -> None:
    original = TPCH_VIEWS[name]
    canonical = canonical_sql(original)
    assert canonical.startswith("SELECT "), "parsed by sqlglot, not left to the text fallback"
    assert canonical_sql(canonical) == canonical
    drifting = [label for label, reformat in REFORMATTINGS.items() if canonical_sql(reformat(original)) != canonical]
    assert drifting == []


@pytest.mark.parametrize("label", REFORMATTINGS)
def test_each_reformatting_changes_the_text_of_most_views(label: str) -> None:
    changed = sum(REFORMATTINGS[label](view) != view for view in TPCH_VIEWS.values())
    assert changed >= 20


_COLUMN_SWAPS = {
    "l_discount": "l_tax",
    "l_shipdate": "l_commitdate",
    "o_orderdate": "o_orderpriority",
    "ps_supplycost": "ps_availqty",
    "c_acctbal": "c_custkey",
    "s_name": "s_address",
    "p_brand": "p_type",
    "o_custkey": "o_orderkey",
    "l_quantity": "l_linenumber",
    "c_phone": "c_address",
}


def _different_constant(body: str) -> str | None:
    parts = _STRING_LITERAL.split(body)
    for index, part in enumerate(parts):
        if not _STRING_LITERAL.fullmatch(part) and _NUMBER.search(part):
            parts[index] = _NUMBER.sub(lambda m: f"{m.group(1)}1", part, count=1)
            return "".join(parts)
    literal = _STRING_LITERAL.search(body)
    return None if literal is None else body.replace(literal.group(0), literal.group(0)[:-1] + "X'", 1)


def _dropped_predicate(body: str) -> str | None:
    lines = body.split("\n")
    for index, _, connective, predicate in _predicate_lines(body):
        if connective == "and " and _is_whole(predicate):
            return "\n".join(lines[:index] + lines[index + 1 :])
    return None


def _and_to_or(body: str) -> str | None:
    changed = re.sub(r"(?m)^(\s*)and ", r"\1or ", body, count=1)
    return None if changed == body else changed


def _different_column(body: str) -> str | None:
    found = [m for m in (re.search(rf"\b{column}\b", body) for column in _COLUMN_SWAPS) if m]
    if not found:
        return None
    first = min(found, key=lambda m: m.start())
    return body[: first.start()] + _COLUMN_SWAPS[first.group(0)] + body[first.end() :]


MEANING_CHANGES: dict[str, Callable[[str], str | None]] = {
    "a different constant": _different_constant,
    "a dropped predicate": _dropped_predicate,
    "AND instead of OR": _and_to_or,
    "a different column": _different_column,
}


@pytest.mark.parametrize("name", TPCH_VIEWS)
def test_a_change_in_meaning_of_a_tpch_view_is_drift(name: str) -> None:
    header, body = _split_header(TPCH_VIEWS[name])
    canonical = canonical_sql(TPCH_VIEWS[name])
    for label, change in MEANING_CHANGES.items():
        changed_body = change(body)
        if changed_body is None:
            continue
        changed = f"{header}\n{changed_body}"
        assert canonical_sql(changed).startswith("SELECT "), label
        assert canonical_sql(changed) != canonical, label
        assert canonical_sql(_everything_at_once(changed)) != canonical, f"{label}, reformatted"


def test_the_meaning_changes_apply_to_most_views() -> None:
    # Q01 and Q13 have no AND chain; Q15's top-supplier view has no constant and only a multi-line predicate.
    bodies = [_split_header(view)[1] for view in TPCH_VIEWS.values()]
    applied = {label: sum(change(body) is not None for body in bodies) for label, change in MEANING_CHANGES.items()}
    assert applied == {
        "a different constant": 22,
        "a dropped predicate": 20,
        "AND instead of OR": 21,
        "a different column": 23,
    }
