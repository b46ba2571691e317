"""The batch pipeline's files: a day's validated prompts (JSON lines), and the batch job's OpenAI batch JSONL
requests (built from the valid prompts) and results (read back by custom_id)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from waldinger_assets.batch.output_table import custom_id
from waldinger_assets.batch.validation import OK, ValidatedPrompt


def write_jsonl(path: Path, items: Iterable[dict]) -> None:
    """Writes JSON lines to a temporary file and renames it into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def write_validated(path: Path, prompts: Sequence[ValidatedPrompt]) -> None:
    write_jsonl(path, ({"prompt_id": p.prompt_id, "prompt": p.prompt, "status": p.status} for p in prompts))


def read_validated(path: Path) -> list[ValidatedPrompt]:
    with path.open(encoding="utf-8") as handle:
        return [ValidatedPrompt(**json.loads(line)) for line in handle if line.strip()]


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
    with path.open(encoding="utf-8") as handle:
        results = [json.loads(line) for line in handle if line.strip()]
    return {result["custom_id"]: result for result in results}
