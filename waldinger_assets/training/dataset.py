"""The training dataset, as pure functions of the labeled examples: validation, a deterministic train/eval split,
and a content version.

The split is decided by a hash of each example's id (sha256, first 8 hex digits, modulo 100, below the eval
percent means eval), so adding rows never moves an old row between splits. The version is the sha256 of the
rows (sorted by id, every column), so the same data always gets the same version and any change a new one.
Rows whose expected answer is not a valid answer of the task are left out and counted, never trained on.
"""

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from waldinger_assets.training.names import EVAL_SPLIT, TRAIN_SPLIT
from waldinger_runtime.ticket_triage import parse_answer

COLUMNS = ("example_id", "prompt", "expected", "labeled_at", "split")


@dataclass(frozen=True)
class DatasetRows:
    rows: list[dict]  # COLUMNS, sorted by example_id; every value a string
    dropped: dict[str, int]  # why rows were left out -> how many


def split_of(example_id: str, eval_percent: int) -> str:
    bucket = int(hashlib.sha256(example_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return EVAL_SPLIT if bucket < eval_percent else TRAIN_SPLIT


def _timestamp(value) -> str:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return str(value)


def dataset_rows(labeled: Iterable[Sequence], eval_percent: int) -> DatasetRows:
    """(example_id, prompt, expected, labeled_at) rows -> the dataset's rows. A repeated example id keeps its
    latest label."""
    latest: dict[str, tuple] = {}
    dropped: Counter = Counter()
    for example_id, prompt, expected, labeled_at in labeled:
        if not example_id or not prompt or not prompt.strip():
            dropped["no_prompt"] += 1
            continue
        if not parse_answer(expected).parsed:
            dropped["invalid_expected_answer"] += 1
            continue
        key = str(example_id)
        if key in latest:
            dropped["relabeled"] += 1
            if _timestamp(labeled_at) < latest[key][3]:
                continue
        latest[key] = (key, prompt, expected.strip(), _timestamp(labeled_at))
    rows = [
        dict(zip(COLUMNS, (*values, split_of(values[0], eval_percent)), strict=True))
        for values in sorted(latest.values())
    ]
    return DatasetRows(rows, dict(dropped))


def dataset_version(rows: Sequence[dict]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row[column] for column in COLUMNS], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def split_counts(rows: Sequence[dict]) -> dict[str, int]:
    counts = Counter(row["split"] for row in rows)
    return {TRAIN_SPLIT: counts[TRAIN_SPLIT], EVAL_SPLIT: counts[EVAL_SPLIT]}


def answer_distribution_markdown(rows: Sequence[dict]) -> str:
    """A Markdown table: category x priority counts, per split."""
    counts: Counter = Counter()
    for row in rows:
        answer = parse_answer(row["expected"])
        counts[(row["split"], answer.category, answer.priority)] += 1
        counts[(row["split"], answer.category, "with order id" if answer.order_id else "no order id")] += 1
    categories = sorted({category for _, category, _ in counts})
    columns = ["low", "medium", "high", "with order id", "no order id"]
    lines = ["| split | category | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for split in (TRAIN_SPLIT, EVAL_SPLIT):
        for category in categories:
            cells = [str(counts[(split, category, column)]) for column in columns]
            lines.append(f"| {split} | {category} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def split_records(rows: Sequence[dict], split: str) -> list[dict]:
    """The rows of one split as the training job reads them: prompt and expected (and the id)."""
    return [
        {"example_id": row["example_id"], "prompt": row["prompt"], "expected": row["expected"]}
        for row in rows
        if row["split"] == split
    ]
