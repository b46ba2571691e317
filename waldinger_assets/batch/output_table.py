"""The batch output table, WALDINGER.LLM.BATCH_OUTPUTS: one row per input row of a day (rows in = rows out),
partitioned by PROMPT_DATE. Writing a day replaces it: DELETE that day and INSERT its rows in one
transaction, so a re-run leaves no duplicates and a failed run leaves the previous rows in place.

Next to the raw completion each row holds its triage answer parsed (waldinger_runtime.ticket_triage: the category,
priority and order id, and the parse status; `no_completion` for rows the model did not answer), and the training
lineage of the model version (its registry tags), so one query goes from an output row to the MLflow run, dataset
and code that trained its model. The new columns come last: ALTER TABLE ... ADD COLUMN appends, so a table that
gains them in place has the same column order as one created from this definition.

`output_rows` is pure (validated prompts + the batch job's results -> table rows); the SQL is at the bottom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass

from resources.snowflake_sql import qualified_name, quote_identifier
from waldinger_assets.batch.names import BATCH_OUTPUT_TABLE
from waldinger_assets.batch.validation import OK, ValidatedPrompt, status_message
from waldinger_runtime.ticket_triage import parse_answer

# Statuses a row can end with: the validation statuses, and these from the batch job.
COMPLETED = "ok"
MISSING_RESULT = "missing_result"

BATCH_OUTPUT_COLUMNS = (
    ("PROMPT_DATE", "DATE NOT NULL"),
    ("PROMPT_ID", "VARCHAR(64) NOT NULL"),
    ("STATUS", "VARCHAR(32) NOT NULL"),
    ("ERROR_MESSAGE", "VARCHAR(16777216)"),
    ("COMPLETION", "VARCHAR(16777216)"),
    ("FINISH_REASON", "VARCHAR(16)"),
    ("PROMPT_TOKENS", "NUMBER(38,0)"),
    ("COMPLETION_TOKENS", "NUMBER(38,0)"),
    ("LATENCY_MS", "FLOAT"),
    ("MODEL_NAME", "VARCHAR(256) NOT NULL"),
    ("MODEL_VERSION", "VARCHAR(64) NOT NULL"),
    ("ARTIFACT_SHA256", "VARCHAR(64) NOT NULL"),
    ("CODE_VERSION", "VARCHAR(64) NOT NULL"),
    ("DAGSTER_RUN_ID", "VARCHAR(64) NOT NULL"),
    ("CREATED_AT", "TIMESTAMP_NTZ(9) NOT NULL"),
    ("ANSWER_CATEGORY", "VARCHAR(32)"),
    ("ANSWER_PRIORITY", "VARCHAR(16)"),
    ("ANSWER_ORDER_ID", "VARCHAR(32)"),
    ("PARSE_STATUS", "VARCHAR(32) NOT NULL"),
    ("MLFLOW_RUN_ID", "VARCHAR(64)"),
    ("TRAINING_DATASET_VERSION", "VARCHAR(64)"),
    ("TRAINING_CODE_VERSION", "VARCHAR(64)"),
)
# The registry tags of a model version that name its training (set when the training registers the version).
MLFLOW_RUN_ID_TAG = "mlflow_run_id"
TRAINING_DATASET_VERSION_TAG = "training_dataset_version"
TRAINING_CODE_VERSION_TAG = "code_version"
_ANSWER_FIELD_CHARS = {"category": 32, "priority": 16, "order_id": 32}  # the ANSWER_* columns' lengths
_LINEAGE_TAG_CHARS = 64
INSERT_CHUNK_ROWS = 500


@dataclass(frozen=True)
class Lineage:
    """What every row of one run carries: which model bytes and which code produced it."""

    model_name: str
    model_version: str
    artifact_sha256: str
    code_version: str
    run_id: str
    mlflow_run_id: str | None = None
    training_dataset_version: str | None = None
    training_code_version: str | None = None

    @classmethod
    def of_version(
        cls,
        model_name: str,
        model_version: str,
        artifact_sha256: str,
        code_version: str,
        run_id: str,
        tags: Mapping[str, str],
    ) -> Lineage:
        """The lineage of a run of the registered version with these tags (its training's, where tagged)."""

        def tag(name: str) -> str | None:
            value = tags.get(name)
            return str(value)[:_LINEAGE_TAG_CHARS] if value not in (None, "") else None

        return cls(
            model_name,
            model_version,
            artifact_sha256,
            code_version,
            run_id,
            mlflow_run_id=tag(MLFLOW_RUN_ID_TAG),
            training_dataset_version=tag(TRAINING_DATASET_VERSION_TAG),
            training_code_version=tag(TRAINING_CODE_VERSION_TAG),
        )


@dataclass(frozen=True)
class OutputRow:
    prompt_date: dt.date
    prompt_id: str
    status: str
    error_message: str | None
    completion: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    model_name: str
    model_version: str
    artifact_sha256: str
    code_version: str
    run_id: str
    created_at: dt.datetime
    answer_category: str | None
    answer_priority: str | None
    answer_order_id: str | None
    parse_status: str
    mlflow_run_id: str | None
    training_dataset_version: str | None
    training_code_version: str | None


def _fits(field: str, value: str | None) -> str | None:
    """A parsed field as its column stores it: a value longer than the column (only a malformed answer has one)
    is NULL there; the raw completion next to it keeps it."""
    return value if value is None or len(value) <= _ANSWER_FIELD_CHARS[field] else None


def custom_id(day: dt.date, prompt_id: str) -> str:
    """The batch request id of a prompt: unique across the days of one job."""
    return f"{day.isoformat()}/{prompt_id}"


def output_rows(
    day: dt.date,
    prompts: Sequence[ValidatedPrompt],
    results: Mapping[str, dict],
    lineage: Lineage,
    max_chars: int,
    created_at: dt.datetime,
) -> list[OutputRow]:
    """One row per validated prompt, in input order. `results` maps custom_id -> the job's output line."""
    rows = []
    for prompt in prompts:
        status, message = prompt.status, status_message(prompt.status, max_chars)
        completion = finish = prompt_tokens = completion_tokens = latency = None
        if prompt.status == OK:
            result = results.get(custom_id(day, prompt.prompt_id))
            if result is None:
                status, message = MISSING_RESULT, "the batch job returned no line for this prompt; re-run the day"
            elif result["response"]["status_code"] == 200:
                body = result["response"]["body"]
                choice = body["choices"][0]
                status, message = COMPLETED, None
                completion, finish = choice["message"]["content"], choice["finish_reason"]
                prompt_tokens = body["usage"]["prompt_tokens"]
                completion_tokens = body["usage"]["completion_tokens"]
                latency = result.get("latency_ms")
            else:
                error = result["response"]["body"]["error"]
                status = error.get("code") or "invalid_request"
                message = error.get("message")
        answer = parse_answer(completion)
        rows.append(
            OutputRow(
                prompt_date=day,
                prompt_id=prompt.prompt_id,
                status=status,
                error_message=message,
                completion=completion,
                finish_reason=finish,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                latency_ms=latency,
                model_name=lineage.model_name,
                model_version=lineage.model_version,
                artifact_sha256=lineage.artifact_sha256,
                code_version=lineage.code_version,
                run_id=lineage.run_id,
                created_at=created_at,
                answer_category=_fits("category", answer.category),
                answer_priority=_fits("priority", answer.priority),
                answer_order_id=_fits("order_id", answer.order_id),
                parse_status=answer.status,
                mlflow_run_id=lineage.mlflow_run_id,
                training_dataset_version=lineage.training_dataset_version,
                training_code_version=lineage.training_code_version,
            )
        )
    return rows


def create_table_sql() -> str:
    columns = ", ".join(f"{quote_identifier(name)} {definition}" for name, definition in BATCH_OUTPUT_COLUMNS)
    comment = "LLM batch outputs: one row per prompt per day, written by the Waldinger batch_outputs asset"
    return f"CREATE TABLE IF NOT EXISTS {qualified_name(*BATCH_OUTPUT_TABLE)} ({columns}) COMMENT = '{comment}'"


def replace_partitions(connection, rows_by_day: Mapping[dt.date, Iterable[OutputRow]]) -> dict[dt.date, int]:
    """Replaces each day's rows in one transaction; returns the rows written per day."""
    table = qualified_name(*BATCH_OUTPUT_TABLE)
    column_list = ", ".join(quote_identifier(name) for name, _ in BATCH_OUTPUT_COLUMNS)
    placeholders = ", ".join(["%s"] * len(BATCH_OUTPUT_COLUMNS))
    insert = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})"
    written = {}
    cursor = connection.cursor()
    cursor.execute(create_table_sql())
    cursor.execute("BEGIN")
    try:
        for day, rows in rows_by_day.items():
            values = [astuple(row) for row in rows]
            cursor.execute(f'DELETE FROM {table} WHERE "PROMPT_DATE" = %s', (day,))
            for start in range(0, len(values), INSERT_CHUNK_ROWS):
                cursor.executemany(insert, values[start : start + INSERT_CHUNK_ROWS])
            written[day] = len(values)
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    return written
