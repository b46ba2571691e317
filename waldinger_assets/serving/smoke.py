"""A smoke test of a deployed OpenAI-compatible endpoint: a few chat completions, their latency percentiles,
and the version it says it serves. Standard library only, so it runs anywhere the pipeline runs."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

SMOKE_PROMPTS = (
    "Summarize last night's batch run in one sentence.",
    "Which tables changed in the warehouse today?",
    "Write a short greeting for a new analyst.",
    "Classify the sentiment of: 'the dashboard is fast now'.",
)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction in (0, 1]) of `values`."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class SmokeResult:
    requests: int
    p50_ms: float
    p99_ms: float
    completion_tokens: int
    first_reply: str

    def metadata(self) -> dict:
        return {
            "smoke_requests": self.requests,
            "smoke_p50_ms": round(self.p50_ms, 2),
            "smoke_p99_ms": round(self.p99_ms, 2),
            "smoke_completion_tokens": self.completion_tokens,
            "smoke_first_reply": self.first_reply,
        }


def _post_json(url: str, body: dict, timeout: float, api_key: str | None) -> dict:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise RuntimeError(f"{url} answered HTTP {error.code}: {detail}") from None


def smoke_test(
    base_url: str, model: str, requests: int = 8, timeout_s: float = 120.0, api_key: str | None = None
) -> SmokeResult:
    """`requests` sequential greedy chat completions against `base_url` (ending in /v1)."""
    latencies, tokens, replies = [], 0, []
    for index in range(requests):
        body = {
            "model": model,
            "messages": [{"role": "user", "content": SMOKE_PROMPTS[index % len(SMOKE_PROMPTS)]}],
            "max_tokens": 8,
            "temperature": 0,
        }
        started = time.perf_counter()
        answer = _post_json(f"{base_url}/chat/completions", body, timeout_s, api_key)
        latencies.append((time.perf_counter() - started) * 1000)
        tokens += int(answer.get("usage", {}).get("completion_tokens", 0))
        replies.append(answer["choices"][0]["message"]["content"])
    return SmokeResult(requests, percentile(latencies, 0.5), percentile(latencies, 0.99), tokens, replies[0])
