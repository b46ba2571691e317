"""The pipeline's LLM task, support-ticket triage: its answer format, how an answer is parsed, and exact match.

The model reads one support ticket (the user message) and answers with one line of compact JSON, keys in this
order and no spaces: `{"category":"shipping","priority":"high","order_id":"48213"}`; `order_id` is `null`
when the ticket names no order. Exact match compares the answer text (surrounding whitespace stripped) with the
expected text, so a model that answers the right fields in another spelling does not pass; the parse status tells
those apart from wrong answers. Pure stdlib: the training job, the batch job and the Dagster assets share it.
"""

import json
from dataclasses import dataclass

CATEGORIES = ("billing", "shipping", "returns", "account", "technical")
PRIORITIES = ("low", "medium", "high")
TRIAGE_INSTRUCTION = "Triage this support ticket:"

PARSED = "parsed"
NOT_JSON = "not_json"
INVALID_FIELDS = "invalid_fields"
NO_COMPLETION = "no_completion"
PARSE_STATUSES = (PARSED, NOT_JSON, INVALID_FIELDS, NO_COMPLETION)


@dataclass(frozen=True)
class TriageAnswer:
    category: str | None
    priority: str | None
    order_id: str | None
    status: str

    @property
    def parsed(self) -> bool:
        return self.status == PARSED


def format_answer(category: str, priority: str, order_id: str | None) -> str:
    """The exact expected answer text for these fields."""
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if priority not in PRIORITIES:
        raise ValueError(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}")
    return json.dumps(
        {"category": category, "priority": priority, "order_id": order_id}, separators=(",", ":"), ensure_ascii=False
    )


def user_message(ticket: str) -> str:
    """The prompt the model is trained on and asked with: the instruction, then the ticket."""
    return f"{TRIAGE_INSTRUCTION} {ticket}"


def parse_answer(completion: str | None) -> TriageAnswer:
    """The fields of a completion, or why it has none (a parse status, never an exception)."""
    if completion is None or not completion.strip():
        return TriageAnswer(None, None, None, NO_COMPLETION)
    try:
        value = json.loads(completion.strip())
    except ValueError:
        return TriageAnswer(None, None, None, NOT_JSON)
    if not isinstance(value, dict):
        return TriageAnswer(None, None, None, NOT_JSON)
    category, priority, order_id = value.get("category"), value.get("priority"), value.get("order_id")
    valid = (
        category in CATEGORIES
        and priority in PRIORITIES
        and (order_id is None or (isinstance(order_id, str) and order_id.isdigit()))
    )
    if not valid:
        return TriageAnswer(
            category if isinstance(category, str) else None,
            priority if isinstance(priority, str) else None,
            order_id if isinstance(order_id, str) else None,
            INVALID_FIELDS,
        )
    return TriageAnswer(category, priority, order_id, PARSED)


def exact_match(expected: str, completion: str | None) -> bool:
    return completion is not None and completion.strip() == expected.strip()
