"""JSON lines files written atomically: the format of the batch job's requests and results."""

import json
import os
from collections.abc import Iterable
from pathlib import Path


def write_jsonl(path: Path, items: Iterable[dict]) -> None:
    """Writes JSON lines to a temporary file and renames it into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
