"""The LLM batch input rows of the demo warehouse: a few hundred support tickets a day, deterministic per date,
each with its true triage answer (resources.demo_tickets), so the seed can label a share of them later.

Includes the rows a batch pipeline must survive: NULL, empty, whitespace-only, very long (a ticket with a pasted
log), unicode and control-character tickets.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from resources.demo_tickets import Ticket, random_ticket
from waldinger_runtime.ticket_triage import user_message

DAYS_OF_HISTORY = 14
MIN_ROWS_PER_DAY = 200
MAX_ROWS_PER_DAY = 320
VERY_LONG_PROMPT_CHARS = 24_000
HOSTILE_EVERY = 50  # the first few rows of every 50 are the hostile kinds below, in this order

# What a row is: a plain ticket, or one of the hostile kinds.
TICKET = "ticket"
NULL = "null"
EMPTY = "empty"
WHITESPACE_ONLY = "whitespace_only"
UNICODE = "unicode"
CONTROL_CHARACTERS = "control_characters"
VERY_LONG = "very_long"
HOSTILE_KINDS = (NULL, EMPTY, WHITESPACE_ONLY, UNICODE, CONTROL_CHARACTERS, VERY_LONG)

_LOG_LINE = "2026-11-01T03:12:09Z ERROR timeout while loading partition; retrying.\n"


@dataclass(frozen=True)
class PromptRow:
    prompt_id: str
    prompt_date: dt.date
    prompt: str | None
    user_id: int
    created_at: dt.datetime


@dataclass(frozen=True)
class DemoPrompt:
    """A batch input row as the demo generated it: its kind and, when it holds a ticket, the true answer."""

    row: PromptRow
    kind: str
    expected: str | None  # the exact answer text; None for rows that hold no ticket (NULL, empty, whitespace)


def utc_today() -> dt.date:
    """Today as the daily partitions count it (Dagster's daily partitions are in UTC)."""
    return dt.datetime.now(dt.UTC).date()


def prompt_dates(today: dt.date, days: int = DAYS_OF_HISTORY) -> list[dt.date]:
    """The last `days` dates, oldest first, ending with today."""
    return [today - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def _hostile(kind: str, ticket: Ticket) -> Ticket | str | None:
    """The hostile row of `kind`: a ticket whose text makes it hostile (its answer unchanged), or a bare value."""
    if kind == NULL:
        return None
    if kind == EMPTY:
        return ""
    if kind == WHITESPACE_ONLY:
        return "   "
    if kind == UNICODE:
        text = f"Grüße aus Köln 👋 {ticket.text} Merci, 日本語でも大丈夫です。"
    elif kind == CONTROL_CHARACTERS:
        text = f"{ticket.text}\x0b(sent from my phone)\x07"
    else:  # VERY_LONG: the ticket, then a pasted log, to exactly VERY_LONG_PROMPT_CHARS characters of prompt
        pasted = f"{ticket.text} Here is the log from the app:\n" + _LOG_LINE * (
            VERY_LONG_PROMPT_CHARS // len(_LOG_LINE)
        )
        text = pasted[: VERY_LONG_PROMPT_CHARS - len(user_message(""))]
    return Ticket(text, ticket.category, ticket.priority, ticket.order_id)


def demo_prompts_for_date(day: dt.date) -> list[DemoPrompt]:
    """Every prompt of one day with its kind and true answer; the same list for the same date on every machine."""
    rng = random.Random(day.toordinal())
    count = rng.randint(MIN_ROWS_PER_DAY, MAX_ROWS_PER_DAY)
    prompts = []
    for index in range(count):
        ticket = random_ticket(rng)
        slot = index % HOSTILE_EVERY
        kind = HOSTILE_KINDS[slot] if slot < len(HOSTILE_KINDS) else TICKET
        content = ticket if kind == TICKET else _hostile(kind, ticket)
        created_at = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86_400))
        row = PromptRow(
            prompt_id=f"{day:%Y%m%d}-{index:05d}",
            prompt_date=day,
            prompt=content.prompt if isinstance(content, Ticket) else content,
            user_id=rng.randrange(1, 5_000),
            created_at=created_at,
        )
        prompts.append(DemoPrompt(row, kind, content.expected if isinstance(content, Ticket) else None))
    return prompts


def prompts_for_date(day: dt.date) -> list[PromptRow]:
    """Every prompt row of one day, as the input table holds them."""
    return [prompt.row for prompt in demo_prompts_for_date(day)]


def answered_prompts_for_date(day: dt.date) -> list[tuple[PromptRow, str]]:
    """The day's plain tickets (no hostile row) with their true answers, in input order."""
    return [(p.row, p.expected) for p in demo_prompts_for_date(day) if p.kind == TICKET and p.expected is not None]
