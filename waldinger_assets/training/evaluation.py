"""Evaluation of a model version on the eval split, through the real engine: the batch deployment's job (the
local subprocess, or the Azure ML cluster in prod) answers every eval prompt greedily; the answers are compared
with the expected ones.

The pure half builds the requests and computes the metrics from the job's results: exact match (the answer text
equals the expected text), parse rate (the answer is a valid triage answer), per-field accuracy, and latency
p50/p99 from the job's per-request latencies.
"""

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from waldinger_runtime.ticket_triage import exact_match, parse_answer

EVAL_MAX_TOKENS = 64


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]  # exact_match, parse_rate, category/priority/order_id accuracy, latency p50/p99
    rows: int
    failures: list[dict]  # a few wrong answers (example id, expected, answer), for the check's metadata


def eval_requests(records: Sequence[dict], model: str) -> list[dict]:
    return [
        {
            "custom_id": record["example_id"],
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [{"role": "user", "content": record["prompt"]}],
                "max_tokens": EVAL_MAX_TOKENS,
                "temperature": 0,
            },
        }
        for record in records
    ]


def requests_sha256(requests: Sequence[dict]) -> str:
    return hashlib.sha256(json.dumps(list(requests), sort_keys=True).encode()).hexdigest()


def _completion(result: dict | None) -> str | None:
    if not result or result.get("response", {}).get("status_code") != 200:
        return None
    choices = result["response"]["body"].get("choices") or [{}]
    return (choices[0].get("message") or {}).get("content")


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def evaluate_results(records: Sequence[dict], results: dict[str, dict], keep_failures: int = 5) -> Evaluation:
    if not records:
        raise ValueError("the eval split is empty: there is nothing to evaluate on")
    matches = parsed = category = priority = order_id = 0
    latencies, failures = [], []
    for record in records:
        result = results.get(record["example_id"])
        answer_text = _completion(result)
        expected, answer = parse_answer(record["expected"]), parse_answer(answer_text)
        matched = exact_match(record["expected"], answer_text)
        matches += matched
        parsed += answer.parsed
        category += answer.category == expected.category
        priority += answer.priority == expected.priority
        order_id += answer.parsed and answer.order_id == expected.order_id
        if result and result.get("latency_ms") is not None:
            latencies.append(float(result["latency_ms"]))
        if not matched and len(failures) < keep_failures:
            failures.append({"example_id": record["example_id"], "expected": record["expected"], "answer": answer_text})
    total = len(records)
    metrics = {
        "exact_match": matches / total,
        "parse_rate": parsed / total,
        "category_accuracy": category / total,
        "priority_accuracy": priority / total,
        "order_id_accuracy": order_id / total,
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p99_ms": percentile(latencies, 0.99),
    }
    return Evaluation({key: round(value, 4) for key, value in metrics.items()}, total, failures)


def write_requests(path: Path, requests: Sequence[dict]) -> None:
    from waldinger_runtime.jsonl import write_jsonl

    write_jsonl(path, requests)


def read_results(path: Path) -> dict[str, dict]:
    from waldinger_runtime.jsonl import read_jsonl

    return {result["custom_id"]: result for result in read_jsonl(path)}
