"""The model graph: source -> registered version (checks) -> production; promotion and rollback from the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Definitions

from resources.asset_values import LocalAssetValuesIOManager
from resources.model_registry import EmbeddedModelRegistryResource
from resources.model_registry.embedded import EmbeddedModelRegistry, RegistryError
from resources.model_source import ModelSourceResource
from tests.helpers import step_failure_messages, waldinger_cli
from waldinger_assets.model.assets import (
    CHAT_CHECK,
    HASH_CHECK,
    PRODUCTION_MODEL_KEY,
    artifact_hash_matches,
    model_loads_and_answers_deterministically,
    model_source,
    production_model,
    registered_model,
)

pytestmark = pytest.mark.slow
NAME = "waldinger-tiny-mistral"


@pytest.fixture
def model_graph(tmp_path: Path):
    data_dir = tmp_path / "data"
    definitions = Definitions(
        assets=[model_source, registered_model, production_model],
        asset_checks=[artifact_hash_matches, model_loads_and_answers_deterministically],
        resources={
            "model_source_settings": ModelSourceResource(kind="tiny", cache_dir=str(data_dir / "models" / "source")),
            "model_registry": EmbeddedModelRegistryResource(model_name=NAME, root=str(data_dir / "registry")),
            "io_manager": LocalAssetValuesIOManager(base_dir=str(tmp_path / "storage")),
        },
    )
    instance = DagsterInstance.ephemeral()

    def run():
        job = definitions.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(instance=instance, raise_on_error=False)

    return run, EmbeddedModelRegistry(data_dir / "registry"), data_dir


def checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_register_check_and_promote_then_register_again_creates_no_version(model_graph) -> None:
    run, registry, _ = model_graph
    first = run()
    assert first.success
    assert checks(first) == {HASH_CHECK: True, CHAT_CHECK: True}
    (version,) = registry.list_versions(NAME)
    assert version.stage == "Production"
    assert version.tags["dagster_run_id"] == first.run_id
    assert {"artifact_sha256", "source", "code_version", "dagster_run_id"} <= set(version.tags)

    second = run()
    assert second.success
    metadata = next(
        e.materialization.metadata
        for e in second.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "waldinger/model/registered_model"
    )
    assert metadata["new_version"].value is False
    assert [v.version for v in registry.list_versions(NAME)] == ["1"]


def test_a_corrupted_registered_artifact_blocks_promotion(model_graph) -> None:
    run, registry, _ = model_graph
    assert run().success
    (version,) = registry.list_versions(NAME)
    weights = Path(version.path) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the weights
    weights.write_bytes(bytes(data))
    result = run()
    assert not result.success
    assert checks(result)[HASH_CHECK] is False
    assert "waldinger/model/production_model" not in materialized(result)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: text.replace('"version": "1"', '"version": "7"'), id="wrong-version"),
    ],
)
def test_a_corrupted_registry_entry_fails_with_a_clear_error_and_recovers_when_restored(
    model_graph, tmp_path: Path, damage
) -> None:
    run, registry, data_dir = model_graph
    assert run().success
    (version,) = registry.list_versions(NAME)
    entry = Path(version.path).parent / "version.json"
    intact = entry.read_text()
    entry.write_text(damage(intact))

    failed = run()
    assert not failed.success
    message = step_failure_messages(failed)
    assert f"The registry entry {entry} is corrupted" in message
    assert "Restore the file from a backup" in message
    assert "waldinger/model/production_model" not in materialized(failed)

    env = {"WALDINGER_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    listed = waldinger_cli("model", "list", env=env)
    assert listed.returncode != 0
    assert f"The registry entry {entry} is corrupted" in listed.stderr
    assert "Traceback" not in listed.stderr

    entry.write_text(intact)  # restored from the backup the message asks for
    assert run().success
    assert [(v.version, v.stage) for v in registry.list_versions(NAME)] == [("1", "Production")]


def test_a_corrupted_promotion_history_names_the_line(model_graph) -> None:
    run, registry, _ = model_graph
    assert run().success
    history = registry.root / NAME / "promotions.jsonl"
    history.write_text(history.read_text() + '{"version": "2", "reas\n')
    with pytest.raises(RegistryError, match=rf"{history} is corrupted at line 2"):
        registry.promotions(NAME)


def test_cli_lists_promotes_and_rolls_back_with_history_in_dagster(model_graph, tmp_path: Path) -> None:
    run, registry, data_dir = model_graph
    assert run().success
    (v1,) = registry.list_versions(NAME)
    changed = Path(shutil.copytree(v1.path, tmp_path / "v2"))
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-6}))
    registry.register(NAME, changed, {"source": "test"}, {})

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {"WALDINGER_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(dagster_home)}
    listed = json.loads(waldinger_cli("model", "list", "--json", env=env).stdout)
    assert [(v["version"], v["stage"]) for v in listed] == [("1", "Production"), ("2", "None")]
    assert all(v["tags"]["artifact_sha256"] and v["created_at"] for v in listed)

    promoted = waldinger_cli("model", "promote", "--version", "2", "--json", env=env)
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["version"] == "2"
    rolled_back = waldinger_cli("model", "rollback", "--json", env=env)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert json.loads(rolled_back.stdout) == {
        "model": NAME,
        "version": "1",
        "previous_version": "2",
        "reason": "rollback from 2",
    }
    assert registry.production(NAME).version == "1"

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        event = instance.get_latest_materialization_event(AssetKey(PRODUCTION_MODEL_KEY))
    assert event.asset_materialization.metadata["reason"].value == "rollback from 2"

    missing = waldinger_cli("model", "promote", "--version", "9", env=env)
    assert missing.returncode == 2 and "no version '9'" in missing.stderr
