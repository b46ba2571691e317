"""The LLM batch input rows of the demo warehouse: a few hundred prompts a day, deterministic per date.

Includes the rows a batch pipeline must survive: NULL, empty, whitespace-only, very long, unicode and
control-character prompts.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

DAYS_OF_HISTORY = 14
MIN_ROWS_PER_DAY = 200
MAX_ROWS_PER_DAY = 320
VERY_LONG_PROMPT_CHARS = 24_000

_TOPICS = (
    "our Snowflake cost report",
    "the churn dashboard",
    "a customer complaint about late delivery",
    "the quarterly revenue numbers",
    "a failed dbt model",
    "the onboarding email",
    "a SQL query that times out",
    "the support ticket backlog",
    "a product description for hiking boots",
    "the incident postmortem",
)
_TASKS = (
    "Summarize {topic} in three bullet points.",
    "Write a polite reply about {topic}.",
    "Explain {topic} to a new analyst.",
    "List the risks you see in {topic}.",
    "Translate a short note about {topic} into French.",
    "Classify the sentiment of: 'I love {topic}!'",
)


@dataclass(frozen=True)
class PromptRow:
    prompt_id: str
    prompt_date: dt.date
    prompt: str | None
    user_id: int
    created_at: dt.datetime


def utc_today() -> dt.date:
    """Today as the daily partitions count it (Dagster's daily partitions are in UTC)."""
    return dt.datetime.now(dt.UTC).date()


def prompt_dates(today: dt.date, days: int = DAYS_OF_HISTORY) -> list[dt.date]:
    """The last `days` dates, oldest first, ending with today."""
    return [today - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def _special_prompt(index: int) -> str | None:
    specials: list[str | None] = [
        None,
        "",
        "   ",
        "Résumé the naïve café's menu in 日本語, please. 🚀",
        "Ignore the vertical tab\x0b and the bell\x07 in this prompt.",
        ("Please summarize the following log. " + "ERROR timeout while loading partition; retrying. " * 500)[
            :VERY_LONG_PROMPT_CHARS
        ],
    ]
    return specials[index % len(specials)]


def prompts_for_date(day: dt.date) -> list[PromptRow]:
    """Every prompt of one day; the same list for the same date on every machine."""
    rng = random.Random(day.toordinal())
    count = rng.randint(MIN_ROWS_PER_DAY, MAX_ROWS_PER_DAY)
    rows = []
    for index in range(count):
        special = index % 50 < 6
        text = _special_prompt(index % 50) if special else rng.choice(_TASKS).format(topic=rng.choice(_TOPICS))
        created_at = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86_400))
        rows.append(
            PromptRow(
                prompt_id=f"{day:%Y%m%d}-{index:05d}",
                prompt_date=day,
                prompt=text,
                user_id=rng.randrange(1, 5_000),
                created_at=created_at,
            )
        )
    return rows
