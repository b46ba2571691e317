"""The embedded warehouse killed under a running batch: the step fails with an error that says what happened,
is retried with backoff (RetryPolicy), and either recovers (the retry starts the warehouse again) or, when the
warehouse stays down, the run fails clearly after the last retry. Either way no day is half-written, and a
re-run lands exact row counts."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from resources import environment
from resources.embedded_warehouse import control
from tests.helpers import step_failure_messages
from waldinger_assets.batch.partitions import daily_partitions

pytestmark = pytest.mark.slow
# Days the module fills itself, two prompts each, away from the seeded last 14 days: a long range keeps the
# batch input step reading for a while (the window the first kill lands in) while the model has little to do.
FIRST_DAY = dt.date.fromisoformat(daily_partitions.start.strftime("%Y-%m-%d"))
DAYS = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(8)]
PROMPTS_PER_DAY = 2
RETRIES = environment.step_retries().max_retries


@pytest.fixture(scope="module")
def faults_pipeline(pipeline):
    pipeline.query('DELETE FROM WALDINGER.LLM.PROMPTS WHERE "PROMPT_DATE" BETWEEN %s AND %s', DAYS[0], DAYS[-1])
    for day in DAYS:
        for index in range(PROMPTS_PER_DAY):
            pipeline.query(
                'INSERT INTO WALDINGER.LLM.PROMPTS ("PROMPT_ID", "PROMPT_DATE", "PROMPT", "USER_ID", "CREATED_AT") '
                "VALUES (%s, %s, %s, %s, %s)",
                f"fault-{day:%Y%m%d}-{index}",
                day,
                f"Name one colour ({day}, {index}).",
                index,
                dt.datetime.combine(day, dt.time(12)),
            )
    return pipeline


def rows_per_day(pipeline) -> dict[dt.date, int]:
    counted = pipeline.query(
        'SELECT "PROMPT_DATE", COUNT(*), COUNT(DISTINCT "PROMPT_ID") FROM WALDINGER.LLM.BATCH_OUTPUTS '
        'WHERE "PROMPT_DATE" BETWEEN %s AND %s GROUP BY 1',
        DAYS[0],
        DAYS[-1],
    )
    assert all(count == distinct for _, count, distinct in counted), "no duplicate rows"
    return {day: count for day, count, _ in counted}


def retries(result) -> list:
    return [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]


def kill_warehouse(data_dir) -> bool:
    pid = control.status(data_dir).pid
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def killing(data_dir, when: Callable[[], bool], repeat: bool) -> Iterator[list[float]]:
    """Kills the warehouse (SIGKILL, no checkpoint) as soon as `when()` holds; with `repeat`, every time it
    comes back, until the block ends. Yields the times of the kills."""
    kills: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        import time

        while not stop.is_set() and (repeat or not kills):
            if when() and kill_warehouse(data_dir):
                kills.append(time.monotonic())
            stop.wait(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield kills
    finally:
        stop.set()
        watcher.join()


def test_killed_while_reading_the_retry_restarts_it_and_the_run_lands_every_row(faults_pipeline) -> None:
    pipeline = faults_pipeline
    run_id = str(uuid.uuid4())
    kills: list[str] = []

    def kill_after_the_first_day(entry, _cursor) -> None:
        """Called as the run stores each event, in the step's own thread: the batch input step has just logged
        its first day and has the others still to read, so the kill always lands mid-read (no polling race)."""
        if (
            not kills
            and entry.step_key == "waldinger__batch__batch_input"
            and entry.user_message.startswith(f"{DAYS[0]}: ")
            and kill_warehouse(pipeline.data_dir)
        ):
            kills.append(entry.step_key)

    storage = pipeline.instance.event_log_storage
    storage.watch(run_id, None, kill_after_the_first_day)
    try:
        result = pipeline.run(DAYS[0], DAYS[-1], run_id=run_id)
    finally:
        storage.end_watch(run_id, kill_after_the_first_day)
    assert len(kills) == 1, "the warehouse was killed once, while the batch input step was reading"
    assert result.success, step_failure_messages(result)
    (retry,) = retries(result)
    assert retry.step_key == "waldinger__batch__batch_input"
    assert "stopped while this step was connecting to it or using it" in retry.event_specific_data.error.cause.message
    assert control.status(pipeline.data_dir).running, "the retry started the warehouse again"
    assert rows_per_day(pipeline) == dict.fromkeys(DAYS, PROMPTS_PER_DAY)


def test_down_for_the_whole_run_fails_clearly_after_backoff_and_a_rerun_recovers(faults_pipeline) -> None:
    pipeline = faults_pipeline
    assert pipeline.run(DAYS[0], DAYS[-1]).success
    before = pipeline.query(
        'SELECT "PROMPT_ID", "DAGSTER_RUN_ID" FROM WALDINGER.LLM.BATCH_OUTPUTS '
        'WHERE "PROMPT_DATE" BETWEEN %s AND %s ORDER BY 1',
        DAYS[0],
        DAYS[-1],
    )
    with killing(pipeline.data_dir, when=lambda: True, repeat=True):
        failed = pipeline.run(DAYS[0], DAYS[-1])
    assert not failed.success
    retried = retries(failed)
    assert len(retried) == RETRIES, "every retry was used"
    waits = [event.event_specific_data.seconds_to_wait for event in retried]
    assert waits == sorted(waits) and waits[0] < waits[-1], f"exponential backoff between attempts: {waits}"
    message = step_failure_messages(failed)
    assert "embedded warehouse" in message and "waldinger warehouse start" in message, message

    assert (
        pipeline.query(
            'SELECT "PROMPT_ID", "DAGSTER_RUN_ID" FROM WALDINGER.LLM.BATCH_OUTPUTS '
            'WHERE "PROMPT_DATE" BETWEEN %s AND %s ORDER BY 1',
            DAYS[0],
            DAYS[-1],
        )
        == before
    ), "the failed run changed nothing"
    rerun = pipeline.run(DAYS[0], DAYS[-1])
    assert rerun.success
    assert rows_per_day(pipeline) == dict.fromkeys(DAYS, PROMPTS_PER_DAY)
    assert pipeline.query(
        'SELECT DISTINCT "DAGSTER_RUN_ID" FROM WALDINGER.LLM.BATCH_OUTPUTS WHERE "PROMPT_DATE" BETWEEN %s AND %s',
        DAYS[0],
        DAYS[-1],
    ) == [(rerun.run_id,)]
