"""Each sensor against the embedded warehouse, the on-disk registry and a persistent Dagster instance:
the run requests it makes, the cursor it leaves, and that it never fires twice for one state or misses one."""

from __future__ import annotations

import pytest
from dagster import AssetKey, AssetMaterialization, MetadataValue, materialize

from resources.model_source.tiny_model import TINY_MODEL_NAME, build_tiny_model
from sensors.cursors import load_cursor
from sensors.drift_alert import drift_alert_sensor
from sensors.model_version import model_version_sensor
from sensors.schema_change import schema_change_sensor
from tests.sensors.conftest import PROMPTS, TODAY
from waldinger_assets.schema_drift.fingerprint import database_fingerprints
from waldinger_assets.serving.assets import REALTIME_DEPLOYMENT_KEY

pytestmark = pytest.mark.slow


def test_the_schema_change_sensor_fires_once_per_change_and_again_when_it_reverts(project) -> None:
    first = schema_change_sensor(project.sensor_context())
    (request,) = first.run_requests
    assert request.tags["waldinger/changed"] == "first tick"
    quiet = schema_change_sensor(project.sensor_context(first.cursor))
    assert not quiet.run_requests and quiet.cursor is None, "no change: no run, cursor kept"

    project.break_contract()
    try:
        changed = schema_change_sensor(project.sensor_context(first.cursor))
        (request,) = changed.run_requests
        assert request.tags["waldinger/changed"] == "WALDINGER"
        assert not schema_change_sensor(project.sensor_context(changed.cursor)).run_requests
    finally:
        project.restore_contract()
    reverted = schema_change_sensor(project.sensor_context(changed.cursor))
    (again,) = reverted.run_requests
    assert again.run_key != first.run_requests[0].run_key, "the same state seen again is a new run"

    baseline = project.root / "baseline.json"
    kept = baseline.read_bytes()
    baseline.write_bytes(kept.replace(b"\n", b"\n ", 1))  # what `waldinger drift accept` does: a new baseline
    try:
        accepted = schema_change_sensor(project.sensor_context(reverted.cursor))
        (request,) = accepted.run_requests
        assert request.tags["waldinger/changed"] == "baseline"
    finally:
        baseline.write_bytes(kept)


def waldinger_fingerprint(project) -> str:
    with project.resources["warehouse"].get_connection() as connection:
        return database_fingerprints(connection, ["WALDINGER"])["WALDINGER"]


@pytest.mark.parametrize(
    ("change", "revert"),
    [
        (f'ALTER TABLE {PROMPTS} ADD COLUMN "EXTRA" VARCHAR(10)', f'ALTER TABLE {PROMPTS} DROP COLUMN "EXTRA"'),
        (
            'CREATE VIEW "WALDINGER"."LLM"."RECENT" AS SELECT "PROMPT_ID" FROM "WALDINGER"."LLM"."PROMPTS"',
            'DROP VIEW "WALDINGER"."LLM"."RECENT"',
        ),
        ('CREATE SCHEMA "WALDINGER"."SCRATCH"', 'DROP SCHEMA "WALDINGER"."SCRATCH"'),
    ],
    ids=["column added", "view created", "schema created"],
)
def test_the_fingerprint_sees_each_kind_of_definition_change(project, change: str, revert: str) -> None:
    before = waldinger_fingerprint(project)
    project.add_prompts(TODAY, 1, "data-only")
    assert waldinger_fingerprint(project) == before, "loading rows is not a definition change"
    project.sql(change)
    try:
        assert waldinger_fingerprint(project) != before
    finally:
        project.sql(revert)
    assert waldinger_fingerprint(project) == before


def test_the_fingerprint_sees_comment_changes(project) -> None:
    seen = {waldinger_fingerprint(project)}
    for comment in ("the prompts", "prompts for the daily batch"):
        project.sql(f"COMMENT ON TABLE {PROMPTS} IS '{comment}'")
        seen.add(waldinger_fingerprint(project))
    assert len(seen) == 3


def test_the_model_version_sensor_follows_promotions_and_rollbacks(project, tmp_path) -> None:
    registry = project.registry
    first_version = registry.production(TINY_MODEL_NAME)
    first = model_version_sensor(project.sensor_context())
    (request,) = first.run_requests
    assert request.tags["waldinger/model_version"] == first_version.version, "never deployed: deploy it"
    assert not model_version_sensor(project.sensor_context(first.cursor)).run_requests

    second, _ = registry.register(
        TINY_MODEL_NAME, build_tiny_model(tmp_path / "tiny2", seed=7), tags={"artifact_sha256": ""}, properties={}
    )
    assert not model_version_sensor(project.sensor_context(first.cursor)).run_requests, "registered, not promoted"
    registry.promote(TINY_MODEL_NAME, second.version)
    try:
        promoted = model_version_sensor(project.sensor_context(first.cursor))
        (request,) = promoted.run_requests
        assert request.tags["waldinger/model_version"] == second.version
    finally:
        registry.rollback(TINY_MODEL_NAME)
    rolled_back = model_version_sensor(project.sensor_context(promoted.cursor))
    (request,) = rolled_back.run_requests
    assert request.tags["waldinger/model_version"] == first_version.version
    assert request.run_key != first.run_requests[0].run_key, "the same version promoted again is a new deploy"


def test_the_model_version_sensor_starts_quietly_when_the_deployment_is_current(project) -> None:
    production = project.registry.production(TINY_MODEL_NAME)
    deployment = AssetKey(REALTIME_DEPLOYMENT_KEY)
    project.instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=deployment,
            metadata={
                "version": MetadataValue.text(production.version),
                "artifact_sha256": MetadataValue.text(production.sha256),
            },
        )
    )
    try:
        first = model_version_sensor(project.sensor_context())
        assert not first.run_requests
        assert load_cursor(first.cursor)["production"]["version"] == production.version
    finally:
        # Never deployed again, as the other tests of this module find the instance.
        project.instance.wipe_assets([deployment])


def test_the_drift_alert_sensor_alerts_what_the_report_did_not(project) -> None:
    from resources.schema_drift import SchemaDriftSettings
    from waldinger_assets.schema_drift.assets import (
        contract_objects_have_no_breaking_drift,
        drift_report,
        schema_snapshot,
    )

    start = drift_alert_sensor(project.sensor_context())
    assert not start.run_requests and load_cursor(start.cursor)["id"] >= 0
    alerts_before = len(project.alerts())

    project.break_contract()
    try:
        blocked = project.run_job("schema_drift")
        assert not blocked.success
        assert len(project.alerts()) == alerts_before + 1, "the drift report alerted"
        after_report = drift_alert_sensor(project.sensor_context(start.cursor))
        assert len(project.alerts()) == alerts_before + 1, "the sensor does not alert it twice"
        assert not project.run_job("schema_drift").success  # same drift again: alerted once only
        deduplicated = drift_alert_sensor(project.sensor_context(after_report.cursor))
        assert len(project.alerts()) == alerts_before + 1
    finally:
        project.restore_contract()

    # A run that ends before the check can decide (a database that is not there): nobody alerted it yet.
    broken = SchemaDriftSettings(**{**project.resources["schema_drift"].model_dump(), "databases": ["NO_SUCH_DB"]})
    undecided = materialize(
        [schema_snapshot, drift_report, contract_objects_have_no_breaking_drift],
        resources={**project.resources, "schema_drift": broken},
        instance=project.instance,
        raise_on_error=False,
    )
    assert not undecided.success
    alerted = drift_alert_sensor(project.sensor_context(deduplicated.cursor))
    (alert,) = project.alerts()[alerts_before + 1 :]
    assert alert["kind"] == "drift_check" and alert["link"] == f"http://dagster.test/runs/{undecided.run_id}"
    assert "could not decide" in alert["title"]

    assert project.run_job("schema_drift").success
    quiet = drift_alert_sensor(project.sensor_context(alerted.cursor))
    assert (
        len(project.alerts()) == alerts_before + 2
        and load_cursor(quiet.cursor)["id"] > load_cursor(alerted.cursor)["id"]
    )
