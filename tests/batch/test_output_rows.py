"""Pure logic of the batch outputs: validation statuses, the job's requests, and the table rows built from the
job's results (rows in = rows out, every row stamped with its lineage)."""

from __future__ import annotations

import datetime as dt

from waldinger_assets.batch.job_files import request_lines
from waldinger_assets.batch.output_table import MISSING_RESULT, Lineage, custom_id, output_rows
from waldinger_assets.batch.validation import (
    CONTROL_CHARACTERS,
    DUPLICATE_ID,
    EMPTY_PROMPT,
    NULL_PROMPT,
    OK,
    TOO_LONG,
    validate_prompts,
)

DAY = dt.date(2026, 11, 20)
LINEAGE = Lineage("tiny", "3", "ab" * 32, "deadbeef", "run-1")
ROWS = [
    ("p1", "Summarize the cost report."),
    ("p2", None),
    ("p3", "   "),
    ("p4", "x" * 101),
    ("p5", "bell\x07 in the text"),
    ("p6", "tabs\tand\nline breaks are text"),
    ("p1", "a second row with the id of the first"),
    ("p7", "Résumé in 日本語 🚀"),
]


def test_validation_keeps_every_row_with_its_status() -> None:
    statuses = [v.status for v in validate_prompts(ROWS, max_chars=100)]
    assert statuses == [OK, NULL_PROMPT, EMPTY_PROMPT, TOO_LONG, CONTROL_CHARACTERS, OK, DUPLICATE_ID, OK]


def test_only_valid_prompts_become_requests() -> None:
    lines = request_lines(DAY, validate_prompts(ROWS, max_chars=100), "tiny", max_tokens=16)
    assert [line["custom_id"] for line in lines] == ["2026-11-20/p1", "2026-11-20/p6", "2026-11-20/p7"]
    assert lines[0]["body"]["temperature"] == 0 and lines[0]["body"]["max_tokens"] == 16


def _completion(text: str) -> dict:
    body = {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 16, "total_tokens": 36},
    }
    return {"response": {"status_code": 200, "body": body}, "latency_ms": 12.5}


def test_rows_in_equal_rows_out_with_statuses_and_lineage() -> None:
    validated = validate_prompts(ROWS, max_chars=100)
    refused = {"error": {"message": "too many tokens", "code": "context_length_exceeded"}}
    results = {
        custom_id(DAY, "p1"): _completion("answer one"),
        custom_id(DAY, "p6"): {"response": {"status_code": 400, "body": refused}, "latency_ms": 0.0},
        # p7 has no result line: a job that lost a line must not lose the row
    }
    created = dt.datetime(2026, 11, 21, 3, 0)
    rows = output_rows(DAY, validated, results, LINEAGE, max_chars=100, created_at=created)
    assert len(rows) == len(ROWS)
    assert [r.status for r in rows] == [
        "ok",
        NULL_PROMPT,
        EMPTY_PROMPT,
        TOO_LONG,
        CONTROL_CHARACTERS,
        "context_length_exceeded",
        DUPLICATE_ID,
        MISSING_RESULT,
    ]
    first = rows[0]
    assert (first.completion, first.prompt_tokens, first.completion_tokens, first.latency_ms) == (
        "answer one",
        20,
        16,
        12.5,
    )
    assert first.error_message is None
    assert all(r.error_message for r in rows[1:]), "every row that did not complete says why"
    assert "WALDINGER_MAX_PROMPT_CHARS" in rows[3].error_message
    assert {(r.model_name, r.model_version, r.artifact_sha256, r.code_version, r.run_id) for r in rows} == {
        ("tiny", "3", "ab" * 32, "deadbeef", "run-1")
    }
