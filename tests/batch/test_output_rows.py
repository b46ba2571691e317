"""Pure logic of the batch outputs: validation statuses, the job's requests, and the table rows built from the
job's results (rows in = rows out, every row stamped with its lineage)."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple

from waldinger_assets.batch.job_files import request_lines
from waldinger_assets.batch.output_table import (
    BATCH_OUTPUT_COLUMNS,
    MISSING_RESULT,
    Lineage,
    custom_id,
    output_rows,
)
from waldinger_assets.batch.validation import (
    CONTROL_CHARACTERS,
    DUPLICATE_ID,
    EMPTY_PROMPT,
    NULL_PROMPT,
    OK,
    TOO_LONG,
    validate_prompts,
)
from waldinger_runtime.ticket_triage import INVALID_FIELDS, NO_COMPLETION, NOT_JSON, PARSED

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
    assert [r.parse_status for r in rows] == [NOT_JSON] + [NO_COMPLETION] * 7


def test_each_row_holds_its_parsed_answer_next_to_the_raw_completion() -> None:
    rows = [("p1", "ticket one"), ("p2", None), ("p3", "ticket three"), ("p4", "ticket four"), ("p5", "ticket five")]
    validated = validate_prompts(rows, max_chars=100)
    answer = '{"category":"shipping","priority":"high","order_id":"48213"}'
    results = {
        custom_id(DAY, "p1"): _completion(answer),
        custom_id(DAY, "p3"): _completion('{"category":"weather","priority":"high","order_id":null}'),
        custom_id(DAY, "p4"): _completion("I think it is about shipping"),
        custom_id(DAY, "p5"): _completion('{"category":"' + "billing" * 10 + '","priority":"low","order_id":null}'),
    }
    out = output_rows(DAY, validated, results, LINEAGE, max_chars=100, created_at=dt.datetime(2026, 11, 21))
    parsed = [(r.answer_category, r.answer_priority, r.answer_order_id, r.parse_status) for r in out]
    assert parsed == [
        ("shipping", "high", "48213", PARSED),
        (None, None, None, NO_COMPLETION),  # a NULL prompt: never sent, no completion
        ("weather", "high", None, INVALID_FIELDS),
        (None, None, None, NOT_JSON),
        (None, "low", None, INVALID_FIELDS),  # a category longer than its column is NULL there
    ]
    assert out[0].completion == answer and out[1].completion is None
    assert out[4].completion.count("billing") == 10, "the raw completion keeps what the column cannot"


def test_a_row_whose_completion_is_missing_has_no_completion_status() -> None:
    validated = validate_prompts([("p1", "a ticket")], max_chars=100)
    (row,) = output_rows(DAY, validated, {}, LINEAGE, max_chars=100, created_at=dt.datetime(2026, 11, 21))
    assert (row.status, row.completion, row.parse_status) == (MISSING_RESULT, None, NO_COMPLETION)
    assert (row.answer_category, row.answer_priority, row.answer_order_id) == (None, None, None)


def test_rows_carry_the_training_lineage_of_the_version_tags() -> None:
    tags = {
        "artifact_sha256": "ab" * 32,
        "mlflow_run_id": "0f" * 16,
        "training_dataset_version": "cd" * 32,
        "code_version": "deadbeef",
    }
    lineage = Lineage.of_version("tiny", "3", "ab" * 32, "cafe", "run-1", tags)
    untagged = Lineage.of_version("tiny", "2", "ef" * 32, "cafe", "run-1", {"artifact_sha256": "ef" * 32})
    validated = validate_prompts([("p1", "a ticket")], max_chars=100)
    created = dt.datetime(2026, 11, 21)
    (row,) = output_rows(DAY, validated, {}, lineage, max_chars=100, created_at=created)
    assert (row.mlflow_run_id, row.training_dataset_version, row.training_code_version) == (
        "0f" * 16,
        "cd" * 32,
        "deadbeef",
    )
    (old,) = output_rows(DAY, validated, {}, untagged, max_chars=100, created_at=created)
    assert (old.mlflow_run_id, old.training_dataset_version, old.training_code_version) == (None, None, None)
    assert len(astuple(row)) == len(BATCH_OUTPUT_COLUMNS), "one value per column, in the table's order"
