"""The model graph: source -> registered version (checks) -> production; promotion and rollback from the CLI.

The registered artifact here is the source's own, handed on as the training job hands on its output (the
`fine_tuned_artifact` asset below stands in for the training step, whose own tests in tests/training train for
real, minutes a run); what is tested is registration, its checks, promotion and rollback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagster import AssetIn, AssetKey, DagsterInstance, Definitions, asset

from resources.asset_values import LocalAssetValuesIOManager
from resources.model_registry import EmbeddedModelRegistryResource
from resources.model_registry.embedded import EmbeddedModelRegistry, RegistryError
from resources.model_source import ModelSourceResource
from tests.helpers import step_failure_messages, waldinger_cli
from waldinger_assets.model.assets import (
    CHAT_CHECK,
    HASH_CHECK,
    MODEL_SOURCE_KEY,
    PRODUCTION_MODEL_KEY,
    REGISTERED_MODEL_KEY,
    artifact_hash_matches,
    model_loads_and_answers_deterministically,
    model_source,
    production_model,
    registered_model,
)
from waldinger_assets.training.names import FINE_TUNED_MODEL_KEY

pytestmark = pytest.mark.slow
NAME = "waldinger-tiny-mistral"
METRICS = {"exact_match": 0.95, "parse_rate": 1.0, "latency_p50_ms": 38.0}


@asset(key=FINE_TUNED_MODEL_KEY, ins={"model_source": AssetIn(key=MODEL_SOURCE_KEY)})
def fine_tuned_artifact(model_source: dict) -> dict:
    """The source artifact as fine_tuned_model's value describes an artifact (the keys registered_model reads)."""
    return {
        "path": model_source["path"],
        "sha256": model_source["sha256"],
        "mlflow_run_id": "0" * 32,
        "training_dataset_version": "tickets-v1",
        "base_model": model_source["source"],
        "base_model_sha256": model_source["sha256"],
        "method": "full",
        "code_version": "test",
    }


@pytest.fixture
def model_graph(tmp_path: Path):
    data_dir = tmp_path / "data"
    definitions = Definitions(
        assets=[model_source, fine_tuned_artifact, registered_model, production_model],
        asset_checks=[artifact_hash_matches, model_loads_and_answers_deterministically],
        resources={
            "model_source_settings": ModelSourceResource(kind="tiny", cache_dir=str(data_dir / "models" / "source")),
            "model_registry": EmbeddedModelRegistryResource(model_name=NAME, root=str(data_dir / "registry")),
            "io_manager": LocalAssetValuesIOManager(base_dir=str(tmp_path / "storage")),
        },
    )
    instance = DagsterInstance.ephemeral()
    registry = EmbeddedModelRegistry(data_dir / "registry")

    def run(*selection: list[str]):
        job = definitions.resolve_implicit_global_asset_job_def()
        keys = [AssetKey(key) for key in selection] or None
        return job.execute_in_process(instance=instance, raise_on_error=False, asset_selection=keys)

    def register_evaluate_and_promote():
        """The first version through the evaluation gate: registered (with its checks), evaluated, then the whole
        graph. Returns (the registration run, the run that promoted it)."""
        registered = run(MODEL_SOURCE_KEY, FINE_TUNED_MODEL_KEY, REGISTERED_MODEL_KEY)
        assert registered.success
        (version,) = registry.list_versions(NAME)
        registry.record_evaluation(NAME, version.version, METRICS, evaluated_on="tickets-v1")
        promoted = run()
        assert promoted.success
        return registered, promoted

    run.first_promotion = register_evaluate_and_promote
    return run, registry, data_dir


def checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_register_check_and_promote_then_register_again_creates_no_version(model_graph) -> None:
    run, registry, _ = model_graph
    first, promoted = run.first_promotion()
    assert first.success
    assert checks(first) == {HASH_CHECK: True, CHAT_CHECK: True}
    (version,) = registry.list_versions(NAME)
    assert version.stage == "Production"
    assert version.tags["dagster_run_id"] == first.run_id
    assert {"artifact_sha256", "source", "code_version", "dagster_run_id"} <= set(version.tags)
    assert version.tags["mlflow_run_id"] == "0" * 32 and version.tags["training_dataset_version"] == "tickets-v1"
    assert version.metrics == METRICS, "registering the same bytes in the promoting run kept the evaluation"
    assert registry.promotions(NAME)[-1]["run_id"] == promoted.run_id

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
    run.first_promotion()
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
    run.first_promotion()
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
    run.first_promotion()
    history = registry.root / NAME / "promotions.jsonl"
    history.write_text(history.read_text() + '{"version": "2", "reas\n')
    with pytest.raises(RegistryError, match=rf"{history} is corrupted at line 2"):
        registry.promotions(NAME)


def add_second_version(registry: EmbeddedModelRegistry, tmp_path: Path) -> None:
    (v1,) = registry.list_versions(NAME)
    changed = Path(shutil.copytree(v1.path, tmp_path / "v2"))
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-6}))
    registry.register(NAME, changed, {"source": "test"}, {})


def cli_env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    return {
        "WALDINGER_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(dagster_home),
        "WALDINGER_PROMOTION_MIN_EXACT_MATCH": "",  # the defaults (0.9, 0.01), whatever the caller's shell says
        "WALDINGER_PROMOTION_MAX_REGRESSION": "",
    }


def test_cli_lists_promotes_and_rolls_back_with_history_in_dagster(model_graph, tmp_path: Path) -> None:
    run, registry, data_dir = model_graph
    run.first_promotion()
    add_second_version(registry, tmp_path)
    registry.record_evaluation(NAME, "2", {**METRICS, "exact_match": 0.96}, evaluated_on="tickets-v1")

    env = cli_env(data_dir, tmp_path)
    dagster_home = Path(env["DAGSTER_HOME"])
    listed = json.loads(waldinger_cli("model", "list", "--json", env=env).stdout)
    assert [(v["version"], v["stage"]) for v in listed] == [("1", "Production"), ("2", "None")]
    assert all(v["tags"]["artifact_sha256"] and v["created_at"] for v in listed)
    assert [(v["metrics"]["exact_match"], v["evaluated_on"]) for v in listed] == [
        (0.95, "tickets-v1"),
        (0.96, "tickets-v1"),
    ]
    assert listed[1]["tags"] == {"source": "test", "artifact_sha256": registry.get(NAME, "2").sha256}

    promoted = waldinger_cli("model", "promote", "--version", "2", "--json", env=env)
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["version"] == "2"
    assert json.loads(promoted.stdout)["gate"]["passed"] is True
    rolled_back = waldinger_cli("model", "rollback", "--json", env=env)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert json.loads(rolled_back.stdout) == {
        "model": NAME,
        "version": "1",
        "previous_version": "2",
        "reason": "rollback from 2",
        "metrics": METRICS,
        "evaluated_on": "tickets-v1",
        "gate": None,  # rollback is not gated
        "override_reason": None,
    }
    assert registry.production(NAME).version == "1"

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        event = instance.get_latest_materialization_event(AssetKey(PRODUCTION_MODEL_KEY))
    assert event.asset_materialization.metadata["reason"].value == "rollback from 2"

    missing = waldinger_cli("model", "promote", "--version", "9", env=env)
    assert missing.returncode == 2 and "no version '9'" in missing.stderr


def test_cli_promote_refused_by_the_gate_exits_2_and_an_override_needs_a_reason(model_graph, tmp_path: Path) -> None:
    run, registry, data_dir = model_graph
    run.first_promotion()
    add_second_version(registry, tmp_path)
    env = cli_env(data_dir, tmp_path)
    history = (registry.root / NAME / "promotions.jsonl").read_text()

    never_evaluated = waldinger_cli("model", "promote", "--version", "2", env=env)
    assert never_evaluated.returncode == 2
    assert "version 2 has no recorded evaluation; evaluate it first" in never_evaluated.stderr
    assert "`waldinger model evaluate --version 2`" in never_evaluated.stderr

    registry.record_evaluation(NAME, "2", {**METRICS, "exact_match": 0.5}, evaluated_on="tickets-v1")
    refused = waldinger_cli("model", "promote", "--version", "2", "--json", env=env)
    assert refused.returncode == 2
    assert "exact match 0.500 is below the threshold 0.900" in refused.stderr
    assert "exact match 0.500 is worse than production version 1's 0.950 by more than the margin 0.010" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert json.loads(refused.stdout) == {
        "model": NAME,
        "promoted": False,
        "gate": {
            "passed": False,
            "reasons": [
                "exact match 0.500 is below the threshold 0.900",
                "exact match 0.500 is worse than production version 1's 0.950 by more than the margin 0.010",
            ],
            "candidate": "2",
            "production": "1",
            "min_exact_match": 0.9,
            "max_regression": 0.01,
        },
    }
    assert registry.production(NAME).version == "1"
    assert (registry.root / NAME / "promotions.jsonl").read_text() == history

    no_reason = waldinger_cli("model", "promote", "--version", "2", "--override-gate", env=env)
    assert no_reason.returncode == 2 and "--override-gate needs --reason TEXT" in no_reason.stderr
    assert "usage: waldinger" in no_reason.stderr
    reason_alone = waldinger_cli("model", "promote", "--version", "2", "--reason", "because", env=env)
    assert reason_alone.returncode == 2 and "--reason is recorded only with --override-gate" in reason_alone.stderr
    assert registry.production(NAME).version == "1"

    overridden = waldinger_cli(
        "model", "promote", "--version", "2", "--override-gate", "--reason", "INC-42: v1 mislabels refunds", env=env
    )
    assert overridden.returncode == 0, overridden.stderr
    assert "evaluation gate overridden" in overridden.stdout
    assert registry.production(NAME).version == "2"
    entry = registry.promotions(NAME)[-1]
    assert (entry["version"], entry["override_reason"]) == ("2", "INC-42: v1 mislabels refunds")
    assert entry["gate_failures"] == json.loads(refused.stdout)["gate"]["reasons"]
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(AssetKey(PRODUCTION_MODEL_KEY))
    metadata = event.asset_materialization.metadata
    assert metadata["override_reason"].value == "INC-42: v1 mislabels refunds"
    assert metadata["metrics"].value["exact_match"] == 0.5

    listed = waldinger_cli("model", "list", env=env)
    assert "exact match 0.500 on tickets-v1" in listed.stdout and "exact match 0.950 on tickets-v1" in listed.stdout

    # Rollback is not gated: back to version 1, whatever the thresholds.
    strict = {**env, "WALDINGER_PROMOTION_MIN_EXACT_MATCH": "0.99"}
    rolled_back = waldinger_cli("model", "rollback", "--json", env=strict)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert registry.production(NAME).version == "1"
