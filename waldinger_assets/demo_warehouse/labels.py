"""The demo warehouse's labeled examples, WALDINGER.LLM.LABELED_EXAMPLES: support tickets with their exact expected
answer, deterministic like the prompts. Pure data: `seed.py` creates the table and inserts these rows.

Two sources, told apart by SOURCE_PROMPT_ID. Reviewed examples (NULL) are the training data: tickets a person
triaged in the 30 days before the oldest prompt day. Labels of batch prompts (the prompt's id) arrive the day after
their prompt, as real labels do: a share of each past day's plain tickets, for monitoring the model's quality.
"""

import datetime as dt
import random
from dataclasses import dataclass

from resources.demo_tickets import tickets
from waldinger_assets.demo_warehouse.prompts import answered_prompts_for_date

LABELED_EXAMPLES_COLUMNS = (
    ("EXAMPLE_ID", "VARCHAR(64) NOT NULL"),
    ("PROMPT", "VARCHAR(16777216) NOT NULL"),
    ("EXPECTED", "VARCHAR(16777216) NOT NULL"),
    ("LABELED_AT", "TIMESTAMP_NTZ(9) NOT NULL"),
    ("SOURCE_PROMPT_ID", "VARCHAR(64)"),  # NULL for reviewed examples; the batch prompt's id for its label
)
REVIEWED_EXAMPLES = 4_000
REVIEWED_SEED = 20261201  # not the tokenizer corpus's seed, so the tokenizer has not seen these texts
REVIEW_WINDOW_DAYS = 30
DAY_LABEL_SHARE = 0.2


@dataclass(frozen=True)
class LabeledExample:
    example_id: str
    prompt: str
    expected: str
    labeled_at: dt.datetime
    source_prompt_id: str | None


def reviewed_examples(oldest_prompt_day: dt.date, count: int = REVIEWED_EXAMPLES) -> list[LabeledExample]:
    """`count` reviewed tickets (ids rev-000001, ...), labeled evenly over the 30 days before `oldest_prompt_day`."""
    start = dt.datetime.combine(oldest_prompt_day - dt.timedelta(days=REVIEW_WINDOW_DAYS), dt.time())
    step = dt.timedelta(days=REVIEW_WINDOW_DAYS) / count
    return [
        LabeledExample(f"rev-{number:06d}", ticket.prompt, ticket.expected, start + (number - 1) * step, None)
        for number, ticket in enumerate(tickets(seed=REVIEWED_SEED, count=count), start=1)
    ]


def day_labels(day: dt.date, share: float = DAY_LABEL_SHARE) -> list[LabeledExample]:
    """The labels of `share` of `day`'s plain tickets (a deterministic sample, in input order), labeled at some time
    of the following day."""
    answered = answered_prompts_for_date(day)
    rng = random.Random(f"labels/{day.isoformat()}")
    chosen = sorted(rng.sample(range(len(answered)), round(len(answered) * share)))
    following_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    return [
        LabeledExample(
            example_id=f"lbl-{answered[index][0].prompt_id}",
            prompt=answered[index][0].prompt,
            expected=answered[index][1],
            labeled_at=following_day + dt.timedelta(seconds=rng.randrange(86_400)),
            source_prompt_id=answered[index][0].prompt_id,
        )
        for index in chosen
    ]
