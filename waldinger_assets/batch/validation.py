"""Validation of one day's prompts before they reach the model. Pure: rows in, statuses and counts out.

Every row is kept (rows in = rows out); a row that cannot be sent to the model carries the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

OK = "ok"
NULL_PROMPT = "null_prompt"
EMPTY_PROMPT = "empty_prompt"
TOO_LONG = "too_long"
DUPLICATE_ID = "duplicate_id"


@dataclass(frozen=True)
class ValidatedPrompt:
    prompt_id: str
    prompt: str | None
    status: str


def validate_prompts(rows: Iterable[tuple[str, str | None]], max_chars: int) -> list[ValidatedPrompt]:
    """`rows` are (prompt_id, prompt) in a stable order; the first row of a duplicated id is kept as is."""
    seen: set[str] = set()
    validated = []
    for prompt_id, prompt in rows:
        if prompt_id in seen:
            status = DUPLICATE_ID
        elif prompt is None:
            status = NULL_PROMPT
        elif not prompt.strip():
            status = EMPTY_PROMPT
        elif len(prompt) > max_chars:
            status = TOO_LONG
        else:
            status = OK
        seen.add(prompt_id)
        validated.append(ValidatedPrompt(prompt_id, prompt, status))
    return validated


def validation_counts(validated: list[ValidatedPrompt]) -> dict[str, int]:
    counts = Counter(v.status for v in validated)
    return {
        "rows": len(validated),
        "valid": counts[OK],
        "null_prompts": counts[NULL_PROMPT],
        "empty_prompts": counts[EMPTY_PROMPT],
        "too_long_prompts": counts[TOO_LONG],
        "duplicate_ids": counts[DUPLICATE_ID],
    }
