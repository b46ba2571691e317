"""The daily batch end to end on the embedded warehouse and the tiny model: the drift gate, the batch
deployment of the production version, each day's outputs in WALDINGER.LLM.BATCH_OUTPUTS. Re-runs replace a
day (no duplicates), a partition range runs as one run, concurrent days don't collide, a crashing engine fails
the run and keeps the previous rows, and a re-run recovers. Two CLI --partition-range runs at once work too."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from dagster import DagsterInstance

from resources.model_source.tiny_model import TINY_MODEL_NAME
from tests.batch.conftest import TRAINING_TAGS
from tests.helpers import REPO_ROOT, VENV_BIN, waldinger_cli
from waldinger_assets.demo_warehouse.prompts import prompts_for_date, utc_today
from waldinger_runtime.ticket_triage import NO_COMPLETION, PARSE_STATUSES, parse_answer

pytestmark = pytest.mark.slow
TODAY = utc_today()
DAYS = [TODAY - dt.timedelta(days=offset) for offset in (3, 2, 1)]


def test_a_day_lands_once_with_every_row_and_its_lineage(pipeline) -> None:
    day = DAYS[0]
    first = pipeline.run(day)
    assert first.success
    expected = len(prompts_for_date(day))
    assert pipeline.rows(day) == expected, "rows in = rows out"
    statuses = dict(
        pipeline.query(
            'SELECT "STATUS", COUNT(*) FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s GROUP BY 1', day
        )
    )
    assert {"ok", "null_prompt", "empty_prompt", "too_long", "control_characters"} <= set(statuses)
    lineage = pipeline.query(
        'SELECT DISTINCT "MODEL_NAME", "MODEL_VERSION", "ARTIFACT_SHA256", "DAGSTER_RUN_ID" '
        'FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s',
        day,
    )
    production = pipeline.registry.production(TINY_MODEL_NAME)
    assert lineage == [(TINY_MODEL_NAME, production.version, production.sha256, first.run_id)]
    ok = pipeline.query(
        'SELECT COUNT(*) FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s AND "STATUS" = \'ok\' '
        'AND "COMPLETION" IS NOT NULL AND "COMPLETION_TOKENS" > 0 AND "LATENCY_MS" > 0',
        day,
    )[0][0]
    assert ok == statuses["ok"]
    _assert_answers_parsed_and_training_lineage(pipeline, day)
    metadata = first.asset_materializations_for_node("WALDINGER__LLM__BATCH_OUTPUTS")[0].metadata
    assert metadata["rows"].value == expected
    assert metadata["job_reported"].value["job_rows"] == statuses["ok"], "the job's figures came back through Pipes"

    again = pipeline.run(day)
    assert again.success
    assert pipeline.rows(day) == expected, "a re-run replaces the day: no duplicates"
    run_ids = pipeline.query(
        'SELECT DISTINCT "DAGSTER_RUN_ID" FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s', day
    )
    assert run_ids == [(again.run_id,)]


def _assert_answers_parsed_and_training_lineage(pipeline, day: dt.date) -> None:
    rows = pipeline.query(
        'SELECT "COMPLETION", "ANSWER_CATEGORY", "ANSWER_PRIORITY", "ANSWER_ORDER_ID", "PARSE_STATUS" '
        'FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s',
        day,
    )
    assert len(rows) == len(prompts_for_date(day))
    for completion, category, priority, order_id, status in rows:
        answer = parse_answer(completion)
        assert status == answer.status, completion
        if answer.parsed:
            assert (category, priority, order_id) == (answer.category, answer.priority, answer.order_id)
    statuses = {row[4] for row in rows}
    assert NO_COMPLETION in statuses, "the rows that never reached the model"
    assert statuses <= set(PARSE_STATUSES)
    lineage = pipeline.query(
        'SELECT DISTINCT "MLFLOW_RUN_ID", "TRAINING_DATASET_VERSION", "TRAINING_CODE_VERSION" '
        'FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s',
        day,
    )
    assert lineage == [
        tuple(TRAINING_TAGS[tag] for tag in ("mlflow_run_id", "training_dataset_version", "code_version"))
    ]


def test_a_partition_range_is_one_run_and_concurrent_days_do_not_collide(pipeline) -> None:
    result = pipeline.run(DAYS[0], DAYS[2])
    assert result.success
    assert [pipeline.rows(day) for day in DAYS] == [len(prompts_for_date(day)) for day in DAYS]
    assert len(result.get_asset_materialization_events()) >= 3 * 2, "each day of each partitioned asset"

    results = {}
    # Two runs at once, as two run workers would (each with its own Dagster instance storage).
    instances = {day: DagsterInstance.ephemeral() for day in DAYS[1:]}
    threads = [
        threading.Thread(target=lambda d=d: results.update({d: pipeline.run(d, instance=instances[d])}))
        for d in DAYS[1:]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == DAYS[1:] and all(r.success for r in results.values())
    assert [pipeline.rows(day) for day in DAYS] == [len(prompts_for_date(day)) for day in DAYS]


def test_an_engine_crash_fails_the_day_keeps_its_rows_and_a_rerun_recovers(pipeline) -> None:
    day = DAYS[1]
    assert pipeline.run(day).success
    before = pipeline.query(
        'SELECT "DAGSTER_RUN_ID", COUNT(*) FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s GROUP BY 1', day
    )
    production = pipeline.registry.production(TINY_MODEL_NAME)
    weights = pipeline.registry.local_path(production) / "model.safetensors"
    kept = pipeline.root / "weights.bak"
    shutil.copy2(weights, kept)
    weights.write_bytes(b"the disk failed")  # the engine cannot load: the job process dies
    try:
        crashed = pipeline.run(day)
    finally:
        shutil.copy2(kept, weights)
    assert not crashed.success
    assert not [e for e in crashed.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"], "not retried"
    (failure,) = crashed.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data.description.startswith("The batch job failed")
    assert (
        pipeline.query(
            'SELECT "DAGSTER_RUN_ID", COUNT(*) FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s GROUP BY 1',
            day,
        )
        == before
    ), "nothing lost, nothing half-written"

    recovered = pipeline.run(day)
    assert recovered.success and pipeline.rows(day) == len(prompts_for_date(day))


def test_breaking_drift_on_the_output_table_blocks_the_batch(pipeline) -> None:
    day = DAYS[2]
    assert pipeline.run(day).success
    before = pipeline.rows(day)
    drift_env = {
        "WALDINGER_DATA_DIR": str(pipeline.data_dir),
        "WALDINGER_DATABASES": "WALDINGER",
        "WALDINGER_BASELINE": pipeline.settings.baseline_path,
        "WALDINGER_SCHEMA_HISTORY_DIR": pipeline.settings.history_dir,
    }
    assert waldinger_cli("drift", "accept", env=drift_env).returncode == 0
    pipeline.query('ALTER TABLE WALDINGER.LLM.BATCH_OUTPUTS DROP COLUMN "FINISH_REASON"')
    try:
        blocked = pipeline.run(day)
        assert not blocked.success
        materialized = {e.asset_key.to_user_string() for e in blocked.get_asset_materialization_events()}
        assert "WALDINGER/LLM/BATCH_OUTPUTS" not in materialized
        assert pipeline.rows(day) == before
    finally:
        pipeline.query('ALTER TABLE WALDINGER.LLM.BATCH_OUTPUTS ADD COLUMN "FINISH_REASON" VARCHAR(16)')


def test_the_cli_backfills_two_partition_ranges_at_once(pipeline, tmp_path: Path) -> None:
    """Two `dagster asset materialize --partition-range` processes against the project's own definitions at the
    same time, on one DAGSTER_HOME, warehouse and registry (benchmarks/bench_load.py does 30 days in 4 runs)."""
    from resources.embedded_warehouse import control

    env = {
        **os.environ,
        "WALDINGER_DATA_DIR": str(pipeline.data_dir),
        "WALDINGER_DATABASES": "WALDINGER",
        "WALDINGER_BASELINE": str(tmp_path / "baseline.json"),
        "WALDINGER_STORAGE_DIR": str(tmp_path / "storage"),
        "WALDINGER_SCHEMA_HISTORY_DIR": str(tmp_path / "history"),
        "WALDINGER_ENGINE": "transformers",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    assert control.status(pipeline.data_dir).running
    command = [str(VENV_BIN / "dagster"), "asset", "materialize", "-m", "waldinger_assets.definitions"]
    gate = "waldinger/schema_drift/schema_snapshot,waldinger/schema_drift/drift_report,"
    gate += "waldinger/serving/batch_deployment"
    finished = subprocess.run(
        [*command, "--select", gate], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, env=env
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    batch = [*command, "--select", "waldinger/batch/batch_input,WALDINGER/LLM/BATCH_OUTPUTS", "--partition-range"]
    ranges = [(DAYS[0], DAYS[1]), (DAYS[2], DAYS[2])]
    runs = [
        subprocess.Popen(
            [*batch, f"{first.isoformat()}...{last.isoformat()}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        for first, last in ranges
    ]
    logs = [run.communicate(timeout=600)[0] for run in runs]
    for run, log in zip(runs, logs, strict=True):
        assert run.returncode == 0 and "RUN_SUCCESS" in log, log[-3000:]
        assert "database is locked" not in log.lower() and "conflict" not in log.lower()
    run_ids = {
        day: pipeline.query(
            'SELECT DISTINCT "DAGSTER_RUN_ID" FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" = %s', day
        )
        for day in DAYS
    }
    assert run_ids[DAYS[0]] == run_ids[DAYS[1]] != run_ids[DAYS[2]], "one run per range, a range in one run"
    assert [pipeline.rows(day) for day in DAYS] == [len(prompts_for_date(day)) for day in DAYS]
