"""The demo warehouse: deterministic catalog, ticket prompts with their true answers, labeled examples, real object
counts after seeding, idempotent re-seeding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from resources.snowflake_sql import qualified_name, quote_identifier
from resources.warehouse import embedded_warehouse
from tests.helpers import SESSION_TODAY
from waldinger_assets.batch.validation import (
    CONTROL_CHARACTERS,
    EMPTY_PROMPT,
    NULL_PROMPT,
    OK,
    TOO_LONG,
    validate_prompts,
)
from waldinger_assets.demo_warehouse.catalog import DATABASE_LAYOUT, build_catalog
from waldinger_assets.demo_warehouse.labels import (
    DAY_LABEL_SHARE,
    REVIEW_WINDOW_DAYS,
    REVIEWED_EXAMPLES,
    day_labels,
    reviewed_examples,
)
from waldinger_assets.demo_warehouse.prompts import (
    HOSTILE_KINDS,
    TICKET,
    UNICODE,
    VERY_LONG_PROMPT_CHARS,
    answered_prompts_for_date,
    demo_prompts_for_date,
    prompt_dates,
    prompts_for_date,
)
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.training.names import LABELED_EXAMPLES_TABLE
from waldinger_runtime.ticket_triage import PARSED, TRIAGE_INSTRUCTION, parse_answer


def test_catalog_is_deterministic_and_large_enough() -> None:
    first, second = build_catalog(), build_catalog()
    assert first == second
    assert first.object_count >= 3_000
    assert len(DATABASE_LAYOUT) >= 3
    assert sum(len(schemas) for schemas in DATABASE_LAYOUT.values()) >= 10
    assert all(5 <= len(table.columns) <= 40 for table in first.tables)
    names = [(t.database, t.schema, t.name.upper()) for t in first.tables] + [
        (v.database, v.schema, v.name.upper()) for v in first.views
    ]
    assert len(names) == len(set(names)), "names must be distinct even compared case-insensitively"


def test_prompts_are_deterministic_and_include_hostile_rows() -> None:
    day = dt.date(2026, 11, 1)
    rows = prompts_for_date(day)
    assert rows == prompts_for_date(day)
    assert 200 <= len(rows) <= 320
    texts = [row.prompt for row in rows]
    assert None in texts and "" in texts
    assert "   " in texts, "a whitespace-only prompt"
    assert max(len(t) for t in texts if t) >= VERY_LONG_PROMPT_CHARS
    assert len({row.prompt_id for row in rows}) == len(rows)
    assert all(row.prompt_id.startswith("20261101-") for row in rows)
    statuses = {v.status for v in validate_prompts([(r.prompt_id, r.prompt) for r in rows], max_chars=20_000)}
    assert {OK, NULL_PROMPT, EMPTY_PROMPT, TOO_LONG, CONTROL_CHARACTERS} <= statuses
    assert any(t and any(ord(c) > 0xFFFF for c in t) and "日本語" in t for t in texts), "unicode, emoji included"


def test_every_hostile_kind_is_there_and_the_ones_with_text_are_tickets() -> None:
    prompts = demo_prompts_for_date(dt.date(2026, 11, 1))
    assert {p.kind for p in prompts} == {TICKET, *HOSTILE_KINDS}
    by_kind = {p.kind: p for p in prompts}
    assert [by_kind[kind].row.prompt for kind in HOSTILE_KINDS[:3]] == [None, "", "   "]
    for kind in HOSTILE_KINDS[3:]:  # unicode, control characters, very long: still tickets with an answer
        prompt = by_kind[kind]
        assert prompt.row.prompt.startswith(TRIAGE_INSTRUCTION) and parse_answer(prompt.expected).parsed, kind
    assert "\x0b" in by_kind["control_characters"].row.prompt
    long_prompt = by_kind["very_long"].row.prompt
    assert len(long_prompt) == VERY_LONG_PROMPT_CHARS and "ERROR timeout" in long_prompt, "a ticket with a log"
    assert "👋" in by_kind[UNICODE].row.prompt


def test_every_plain_ticket_has_its_true_answer() -> None:
    day = dt.date(2026, 11, 1)
    answered = answered_prompts_for_date(day)
    plain = [p for p in demo_prompts_for_date(day) if p.kind == TICKET]
    assert len(answered) == len(plain) > 0.85 * len(prompts_for_date(day))
    assert all(parse_answer(expected).parsed for _, expected in answered)
    assert len({parse_answer(expected).category for _, expected in answered}) == 5
    # A ticket that names an order has that order id in its answer.
    for row, expected in answered:
        order_id = parse_answer(expected).order_id
        assert order_id is None or order_id in row.prompt


def test_reviewed_examples_are_fixed_and_labeled_before_the_prompt_history() -> None:
    oldest = prompt_dates(dt.date(2026, 11, 30))[0]
    examples = reviewed_examples(oldest)
    assert examples == reviewed_examples(oldest)
    assert len(examples) == REVIEWED_EXAMPLES == 4_000
    assert [e.example_id for e in examples[:2]] == ["rev-000001", "rev-000002"] and examples[-1].example_id == (
        "rev-004000"
    )
    assert all(e.source_prompt_id is None and parse_answer(e.expected).status == PARSED for e in examples)
    start = dt.datetime.combine(oldest - dt.timedelta(days=REVIEW_WINDOW_DAYS), dt.time())
    assert start == min(e.labeled_at for e in examples)
    assert max(e.labeled_at for e in examples) < dt.datetime.combine(oldest, dt.time())
    assert max(e.labeled_at for e in examples) - start > dt.timedelta(days=REVIEW_WINDOW_DAYS - 1), "spread out"


def test_a_days_labels_are_a_fifth_of_its_tickets_labeled_the_next_day() -> None:
    day = dt.date(2026, 11, 1)
    labels = day_labels(day)
    answers = {row.prompt_id: (row.prompt, expected) for row, expected in answered_prompts_for_date(day)}
    assert labels == day_labels(day)
    assert len(labels) == round(len(answers) * DAY_LABEL_SHARE)
    assert len({label.source_prompt_id for label in labels}) == len(labels)
    for label in labels:
        assert (label.prompt, label.expected) == answers[label.source_prompt_id], "the prompt's true answer"
        assert label.labeled_at.date() == day + dt.timedelta(days=1)
        assert label.example_id == f"lbl-{label.source_prompt_id}"


LABELED = qualified_name(*LABELED_EXAMPLES_TABLE)


def _query(data_dir: Path, sql: str) -> list[tuple]:
    with embedded_warehouse(data_dir).get_connection() as connection:
        return connection.cursor().execute(sql).fetchall()


def _object_counts(data_dir: Path) -> dict[str, tuple[int, int, int]]:
    counts = {}
    for database in DATABASE_LAYOUT:
        info = f"{quote_identifier(database)}.INFORMATION_SCHEMA"
        ((tables,),) = _query(data_dir, f"SELECT COUNT(*) FROM {info}.TABLES")
        ((views,),) = _query(data_dir, f"SELECT COUNT(*) FROM {info}.VIEWS")
        ((schemas,),) = _query(
            data_dir, f"SELECT COUNT(*) FROM {info}.SCHEMATA WHERE SCHEMA_NAME <> 'INFORMATION_SCHEMA'"
        )
        counts[database] = (tables, views, schemas)
    return counts


@pytest.mark.slow
def test_seeded_warehouse_holds_the_catalog(seeded_data_dir: Path) -> None:
    catalog = build_catalog()
    counts = _object_counts(seeded_data_dir)
    tables = sum(c[0] for c in counts.values())
    views = sum(c[1] for c in counts.values())
    assert tables == len(catalog.tables) + 3  # + the batch input and output tables and the labeled examples
    assert views == len(catalog.views)
    assert tables + views >= 3_000
    assert sum(c[2] for c in counts.values()) >= 10

    columns = _query(
        seeded_data_dir,
        "SELECT TABLE_SCHEMA, TABLE_NAME, COUNT(*) FROM RAW.INFORMATION_SCHEMA.COLUMNS GROUP BY 1, 2",
    )
    expected = {(t.schema, t.name): len(t.columns) for t in catalog.tables if t.database == "RAW"}
    assert {(schema, name): count for schema, name, count in columns if (schema, name) in expected} == expected
    types = {row[0] for row in _query(seeded_data_dir, "SELECT DISTINCT DATA_TYPE FROM RAW.INFORMATION_SCHEMA.COLUMNS")}
    assert {"NUMBER", "TEXT", "BOOLEAN", "DATE", "TIMESTAMP_NTZ", "VARIANT", "FLOAT"} <= types

    lower_case = _query(
        seeded_data_dir,
        "SELECT COUNT(*) FROM ANALYTICS.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'reporting'",
    )
    assert lower_case[0][0] > 0
    view = next(v for v in catalog.views if v.schema == "reporting")
    selected = _query(seeded_data_dir, f"SELECT COUNT(*) FROM {qualified_name(view.database, view.schema, view.name)}")
    assert selected == [(0,)]


@pytest.mark.slow
def test_seeded_prompts_cover_the_last_week(seeded_data_dir: Path) -> None:
    rows = _query(
        seeded_data_dir,
        "SELECT PROMPT_DATE, COUNT(*), COUNT_IF(PROMPT IS NULL), COUNT_IF(PROMPT = ''), MAX(LENGTH(PROMPT)) "
        "FROM WALDINGER.LLM.PROMPTS GROUP BY PROMPT_DATE ORDER BY PROMPT_DATE",
    )
    dates = [row[0] for row in rows]
    today = SESSION_TODAY
    assert {today - dt.timedelta(days=offset) for offset in range(7)} <= set(dates)
    for day, count, nulls, empties, longest in rows:
        assert count == len(prompts_for_date(day))
        assert nulls > 0 and empties > 0 and longest >= VERY_LONG_PROMPT_CHARS


@pytest.mark.slow
def test_seeding_again_changes_nothing_and_keeps_user_changes(seeded_data_dir: Path) -> None:
    before = _object_counts(seeded_data_dir)
    ((prompt_rows,),) = _query(seeded_data_dir, "SELECT COUNT(*) FROM WALDINGER.LLM.PROMPTS")
    ((labeled_rows,),) = _query(seeded_data_dir, f"SELECT COUNT(*) FROM {LABELED}")
    table = build_catalog().tables[0]
    name = qualified_name(table.database, table.schema, table.name)
    _query(seeded_data_dir, f"ALTER TABLE {name} ADD COLUMN ADDED_BY_USER VARCHAR(10)")

    result = seed(embedded_warehouse(seeded_data_dir).get_connection, today=SESSION_TODAY)

    assert (result.tables_created, result.views_created, result.prompt_rows_inserted) == (0, 0, 0)
    assert (result.reviewed_examples_inserted, result.day_labels_inserted, result.label_dates_filled) == (0, 0, ())
    assert result.objects_existing == build_catalog().object_count
    assert _object_counts(seeded_data_dir) == before
    assert _query(seeded_data_dir, "SELECT COUNT(*) FROM WALDINGER.LLM.PROMPTS") == [(prompt_rows,)]
    assert _query(seeded_data_dir, f"SELECT COUNT(*) FROM {LABELED}") == [(labeled_rows,)]
    added = _query(
        seeded_data_dir,
        f"SELECT COUNT(*) FROM {quote_identifier(table.database)}.INFORMATION_SCHEMA.COLUMNS "
        f"WHERE TABLE_NAME = '{table.name}' AND COLUMN_NAME = 'ADDED_BY_USER'",
    )
    assert added == [(1,)]
    _query(seeded_data_dir, f"ALTER TABLE {name} DROP COLUMN ADDED_BY_USER")


@pytest.mark.slow
def test_seeded_labeled_examples_are_the_reviewed_ones_and_past_days_labels(seeded_data_dir: Path) -> None:
    columns = _query(
        seeded_data_dir,
        "SELECT COLUMN_NAME, IS_NULLABLE FROM WALDINGER.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = 'LLM' AND TABLE_NAME = 'LABELED_EXAMPLES' ORDER BY ORDINAL_POSITION",
    )
    assert columns == [
        ("EXAMPLE_ID", "NO"),
        ("PROMPT", "NO"),
        ("EXPECTED", "NO"),
        ("LABELED_AT", "NO"),
        ("SOURCE_PROMPT_ID", "YES"),
    ]
    dates = prompt_dates(SESSION_TODAY)
    reviewed = _query(
        seeded_data_dir,
        f'SELECT COUNT(*), MIN("EXAMPLE_ID"), MAX("EXAMPLE_ID"), MAX("LABELED_AT") FROM {LABELED} '
        'WHERE "SOURCE_PROMPT_ID" IS NULL',
    )
    assert reviewed[0][:3] == (REVIEWED_EXAMPLES, "rev-000001", "rev-004000")
    assert reviewed[0][3] < dt.datetime.combine(dates[0], dt.time()), "reviewed before the oldest prompt day"

    per_day = _query(
        seeded_data_dir,
        f'SELECT p."PROMPT_DATE", COUNT(*), COUNT_IF(l."PROMPT" = p."PROMPT"), MIN(l."LABELED_AT") FROM {LABELED} l '
        'JOIN WALDINGER.LLM.PROMPTS p ON p."PROMPT_ID" = l."SOURCE_PROMPT_ID" GROUP BY 1 ORDER BY 1',
    )
    assert [row[0] for row in per_day] == dates[:-1], "every day before today, and not today (its labels come later)"
    for day, count, same_prompt, first_labeled in per_day:
        tickets = len(answered_prompts_for_date(day))
        assert count == same_prompt == len(day_labels(day)), day
        assert abs(count - DAY_LABEL_SHARE * tickets) <= 1 and count > 0, (day, count, tickets)
        assert first_labeled.date() == day + dt.timedelta(days=1)
    orphans = _query(
        seeded_data_dir,
        f'SELECT COUNT(*) FROM {LABELED} WHERE "SOURCE_PROMPT_ID" IS NOT NULL AND "SOURCE_PROMPT_ID" NOT IN '
        '(SELECT "PROMPT_ID" FROM WALDINGER.LLM.PROMPTS)',
    )
    assert orphans == [(0,)]
    expected = _query(seeded_data_dir, f'SELECT "EXPECTED" FROM {LABELED}')
    assert len(expected) == REVIEWED_EXAMPLES + sum(row[1] for row in per_day)
    assert {parse_answer(answer).status for (answer,) in expected} == {PARSED}


@pytest.mark.slow
def test_a_day_without_labels_gets_them_again_and_only_it(seeded_data_dir: Path) -> None:
    day = prompt_dates(SESSION_TODAY)[-3]
    ((total,),) = _query(seeded_data_dir, f"SELECT COUNT(*) FROM {LABELED}")
    _query(seeded_data_dir, f"DELETE FROM {LABELED} WHERE \"SOURCE_PROMPT_ID\" LIKE '{day:%Y%m%d}-%'")
    assert _query(seeded_data_dir, f"SELECT COUNT(*) FROM {LABELED}") == [(total - len(day_labels(day)),)]

    result = seed(embedded_warehouse(seeded_data_dir).get_connection, today=SESSION_TODAY)

    assert (result.reviewed_examples_inserted, result.label_dates_filled) == (0, (day,))
    assert result.day_labels_inserted == len(day_labels(day))
    assert _query(seeded_data_dir, f"SELECT COUNT(*) FROM {LABELED}") == [(total,)]
