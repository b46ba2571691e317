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
CONTROL_CHARACTERS = "control_characters"
DUPLICATE_ID = "duplicate_id"

# Line breaks and tabs are text; other control characters usually mean a broken upstream export.
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def has_control_characters(text: str) -> bool:
    return any((ord(char) < 32 or 127 <= ord(char) < 160) and char not in _ALLOWED_CONTROLS for char in text)


def status_message(status: str, max_chars: int) -> str | None:
    """What a row's status means and what to do about it (None for rows that go to the model)."""
    return {
        NULL_PROMPT: "the prompt is NULL; fix the row upstream",
        EMPTY_PROMPT: "the prompt is empty or whitespace only; fix the row upstream",
        TOO_LONG: f"the prompt is over {max_chars} characters (WALDINGER_MAX_PROMPT_CHARS); shorten it upstream",
        CONTROL_CHARACTERS: "the prompt holds control characters (other than tab and line breaks); clean the export",
        DUPLICATE_ID: "another row of this day has the same PROMPT_ID; only the first is sent to the model",
    }.get(status)


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
        elif has_control_characters(prompt):
            status = CONTROL_CHARACTERS
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
        "control_character_prompts": counts[CONTROL_CHARACTERS],
        "duplicate_ids": counts[DUPLICATE_ID],
    }
