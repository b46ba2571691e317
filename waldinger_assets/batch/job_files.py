"""The batch job's input and output, as the OpenAI batch JSONL format: one request per valid prompt (built
here, pure) and the results read back by custom_id."""

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

from waldinger_assets.batch.output_table import custom_id
from waldinger_assets.batch.validation import OK, ValidatedPrompt
from waldinger_runtime.jsonl import read_jsonl, write_jsonl


def request_lines(day: dt.date, prompts: Sequence[ValidatedPrompt], model: str, max_tokens: int) -> list[dict]:
    """One OpenAI batch request per valid prompt (greedy, so a re-run gives the same completions)."""
    return [
        {
            "custom_id": custom_id(day, p.prompt_id),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [{"role": "user", "content": p.prompt}],
                "max_tokens": max_tokens,
                "temperature": 0,
            },
        }
        for p in prompts
        if p.status == OK
    ]


def write_requests(path: Path, lines: Iterable[dict]) -> None:
    write_jsonl(path, lines)


def read_results(path: Path) -> dict[str, dict]:
    return {result["custom_id"]: result for result in read_jsonl(path)}
