"""The drift gate holds across runs, whichever way a run is started: by the batch input sensor, the daily
schedule, declarative automation or a backfill (a single-run range of the daily_batch job, or an asset
backfill of the outputs alone, which has no gate in its run). While breaking drift on a contract object is
unaccepted no batch output is written; once the check passes again, the held work goes through."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import AssetKey, build_schedule_context, evaluate_automation_conditions
from dagster._core.storage.tags import RUN_KEY_TAG

from sensors.batch_input import batch_input_sensor
from sensors.cursors import load_cursor
from sensors.schedules import daily_batch_schedule
from tests.sensors.conftest import PROMPTS, TODAY
from waldinger_assets.batch.assets import BATCH_OUTPUTS_KEY
from waldinger_assets.schema_drift.assets import CONTRACT_CHECK

pytestmark = pytest.mark.slow
OUTPUTS = "/".join(BATCH_OUTPUTS_KEY)
YESTERDAY = TODAY - dt.timedelta(days=1)


def materialized(result) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def contract_check(result) -> bool | None:
    return next((e.passed for e in result.get_asset_check_evaluations() if e.check_name == CONTRACT_CHECK), None)


def failure_messages(result) -> str:
    return "\n".join(
        str(event.event_specific_data.error.message if event.event_specific_data.error else "")
        + str(getattr(event.event_specific_data.user_failure_data, "description", "") or "")
        for event in result.all_events
        if event.is_step_failure
    )


def prompt_rows(project, day: dt.date) -> int:
    return project.sql(f'SELECT COUNT(*) FROM {PROMPTS} WHERE "PROMPT_DATE" = %s', day)[0][0]


def reopen_gate(project) -> None:
    project.restore_contract()
    assert contract_check(project.run_job("schema_drift")) is True


def test_the_batch_input_sensor_holds_days_while_the_gate_is_closed(project) -> None:
    first = batch_input_sensor(project.sensor_context())
    assert not first.run_requests, "the first tick only records what is there"
    project.add_prompts(TODAY, 3, "sensor")
    tick = batch_input_sensor(project.sensor_context(first.cursor))
    (request,) = tick.run_requests
    assert request.partition_key == TODAY.isoformat()

    project.break_contract()  # drift lands before the requested run starts: its own gate stops it
    try:
        before = project.output_rows(TODAY)
        blocked = project.run_job("daily_batch", TODAY, tags={**request.tags, RUN_KEY_TAG: request.run_key})
        assert not blocked.success and contract_check(blocked) is False
        assert OUTPUTS not in materialized(blocked) and project.output_rows(TODAY) == before

        held = batch_input_sensor(project.sensor_context(tick.cursor))
        assert not held.run_requests
        assert load_cursor(held.cursor)["held"] == {TODAY.isoformat(): request.tags["waldinger/input_fingerprint"]}
        project.add_prompts(YESTERDAY, 2, "late")
        still_held = batch_input_sensor(project.sensor_context(held.cursor))
        assert not still_held.run_requests and "Holding 2 day(s)" in still_held.skip_reason.skip_message
    finally:
        reopen_gate(project)

    opened = batch_input_sensor(project.sensor_context(still_held.cursor))
    requests = {r.partition_key: r for r in opened.run_requests}
    assert sorted(requests) == [YESTERDAY.isoformat(), TODAY.isoformat()]
    assert request.run_key not in {r.run_key for r in opened.run_requests}, "a new run key for the new request"
    done = project.run_job(
        "daily_batch",
        TODAY,
        tags={**requests[TODAY.isoformat()].tags, RUN_KEY_TAG: requests[TODAY.isoformat()].run_key},
    )
    assert done.success and project.output_rows(TODAY) == prompt_rows(project, TODAY)

    settled = batch_input_sensor(project.sensor_context(opened.cursor))
    assert not settled.run_requests
    assert list(load_cursor(settled.cursor)["requested"]) == [YESTERDAY.isoformat()], "its run has not started"


def test_the_daily_schedule_runs_the_day_that_ended_behind_the_gate(project) -> None:
    scheduled = dt.datetime.combine(TODAY, dt.time(0, 30), tzinfo=dt.UTC)
    request = daily_batch_schedule(
        build_schedule_context(instance=project.instance, scheduled_execution_time=scheduled)
    )
    assert request.partition_key == YESTERDAY.isoformat()
    before = project.output_rows(YESTERDAY)
    project.break_contract()
    try:
        blocked = project.run_job("daily_batch", YESTERDAY, tags=request.tags)
        assert not blocked.success and contract_check(blocked) is False
        assert OUTPUTS not in materialized(blocked) and project.output_rows(YESTERDAY) == before
    finally:
        reopen_gate(project)


def test_declarative_automation_waits_for_the_blocking_check(project) -> None:
    key = AssetKey(BATCH_OUTPUTS_KEY)
    # The outputs' eager condition waits while any dependency is missing; the batch deployment is one, and only
    # the daily_batch job (or this) materializes it. Done here, the test needs no earlier test to have run it.
    project.deploy_batch_model()
    start = evaluate_automation_conditions(defs=project.definitions, instance=project.instance)
    assert project.run_job("batch_inputs", TODAY).success, "today's input validated, no outputs written"
    project.break_contract()
    try:
        assert contract_check(project.run_job("schema_drift")) is False
        closed = evaluate_automation_conditions(
            defs=project.definitions, instance=project.instance, cursor=start.cursor
        )
        assert closed.get_num_requested(key) == 0, "the input changed but the blocking check failed"
    finally:
        reopen_gate(project)
    opened = evaluate_automation_conditions(defs=project.definitions, instance=project.instance, cursor=closed.cursor)
    assert opened.get_requested_partitions(key) == {TODAY.isoformat()}
    # What the automation sensor launches: the outputs alone, no gate in the run; the in-asset gate lets it by.
    run = project.materialize_outputs_alone(TODAY, TODAY)
    assert run.success and project.output_rows(TODAY) == prompt_rows(project, TODAY)


def test_backfills_write_nothing_while_drift_is_unaccepted(project) -> None:
    days = [TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2)]
    before = [project.output_rows(day) for day in days]
    project.break_contract()
    try:
        whole = project.run_job("daily_batch", days[0], last=days[1])
        assert not whole.success and contract_check(whole) is False
        assert OUTPUTS not in materialized(whole)

        alone = project.materialize_outputs_alone(days[0], days[1])
        assert not alone.success and OUTPUTS not in materialized(alone)
        message = failure_messages(alone)
        assert "Not writing batch outputs" in message and "waldinger drift accept" in message
        assert [project.output_rows(day) for day in days] == before
    finally:
        reopen_gate(project)
    through = project.run_job("daily_batch", days[0], last=days[1])
    assert through.success
    assert [project.output_rows(day) for day in days] == [prompt_rows(project, day) for day in days]
