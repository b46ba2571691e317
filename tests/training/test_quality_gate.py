"""Model quality end to end on the embedded default: the demo's labeled examples -> training dataset -> the
training job (the real one, the default local schedule) -> registration -> evaluation through the batch job ->
promotion through the gate; and the untrained base, registered from the CLI, refused by the gate."""

import json
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Definitions

from resources.asset_values import LocalAssetValuesIOManager
from resources.batch_files import BatchFilesResource
from resources.model_registry import EmbeddedModelRegistryResource
from resources.model_registry.embedded import EmbeddedModelRegistry
from resources.model_source import ModelSourceResource
from resources.serving import LocalBatchComputeResource
from resources.training import LocalTrainingResource
from resources.warehouse import embedded_warehouse
from tests.helpers import instance_env, step_failure_messages, waldinger_cli
from waldinger_assets.model.assets import (
    EVALUATION_CHECK,
    artifact_hash_matches,
    evaluation_on_the_eval_split,
    model_source,
    registered_model,
)
from waldinger_assets.training.assets import fine_tuned_model, labeled_examples_table, training_dataset
from waldinger_assets.training.names import TRAINING_DATASET_KEY

pytestmark = pytest.mark.slow
NAME = "waldinger-tiny-mistral"


def _definitions(root: Path, warehouse_dir: Path, steps: int | None = None) -> Definitions:
    data = root / "data"
    training = {"steps": steps} if steps else {}
    return Definitions(
        assets=[labeled_examples_table, training_dataset, model_source, fine_tuned_model, registered_model],
        asset_checks=[artifact_hash_matches, evaluation_on_the_eval_split],
        resources={
            "warehouse": embedded_warehouse(warehouse_dir),
            "model_source_settings": ModelSourceResource(kind="tiny", cache_dir=str(data / "models" / "source")),
            "model_registry": EmbeddedModelRegistryResource(model_name=NAME, root=str(data / "registry")),
            "training_compute": LocalTrainingResource(
                tracking_uri=f"sqlite:///{data / 'mlflow' / 'mlflow.db'}", **training
            ),
            "batch_compute": LocalBatchComputeResource(engine="transformers"),
            "batch_files": BatchFilesResource(root=str(root / "storage")),
            "io_manager": LocalAssetValuesIOManager(base_dir=str(data / "io")),
        },
    )


def _metadata(result, key: list[str]) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(key))
    return {name: getattr(value, "value", value) for name, value in event.materialization.metadata.items()}


def test_the_fine_tuned_model_learns_the_task_passes_the_gate_and_carries_its_lineage(tmp_path, seeded_data_dir):
    import mlflow

    definitions = _definitions(tmp_path, seeded_data_dir)
    job = definitions.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success, step_failure_messages(result)
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == EVALUATION_CHECK]
    exact_match = evaluation.metadata["exact_match"].value
    assert evaluation.passed and exact_match >= 0.9, evaluation.description
    assert evaluation.metadata["parse_rate"].value >= 0.9

    dataset = _metadata(result, ["waldinger", "training", "training_dataset"])
    trained = _metadata(result, ["waldinger", "training", "fine_tuned_model"])
    assert dataset["train_rows"] > 3000 and dataset["eval_rows"] > 300
    assert "| train | shipping |" in dataset["answer_distribution"]
    (version,) = EmbeddedModelRegistry(tmp_path / "data" / "registry").list_versions(NAME)
    assert version.metrics["exact_match"] == exact_match, "the registry stores the metrics with the version"
    assert version.evaluated_on == dataset["dataset_version"]
    assert version.tags["training_dataset_version"] == dataset["dataset_version"]
    assert version.tags["mlflow_run_id"] == trained["mlflow_run_id"]
    assert version.tags["base_model"] == trained["base_model"] and version.tags["training_method"] == "full"
    run = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'data' / 'mlflow' / 'mlflow.db'}").get_run(
        version.tags["mlflow_run_id"]
    )
    assert run.data.tags["training_dataset_version"] == dataset["dataset_version"]
    assert run.data.tags["artifact_sha256"] == version.sha256, "MLflow run -> the registered bytes"
    assert run.data.tags["code_version"] == version.tags["code_version"]


def test_the_untrained_base_registered_from_the_cli_is_refused_by_the_gate(tmp_path, seeded_data_dir):
    from dagster._core.instance.ref import InstanceRef

    env = instance_env(tmp_path)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    (home / "dagster.yaml").touch()
    definitions = _definitions(tmp_path, seeded_data_dir)
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        job = definitions.resolve_implicit_global_asset_job_def()
        dataset_run = job.execute_in_process(instance=instance, asset_selection=[AssetKey(TRAINING_DATASET_KEY)])
    eval_rows = _metadata(dataset_run, TRAINING_DATASET_KEY)["eval_rows"]

    rows = waldinger_cli("train", "dataset", "--split", "eval", "--jsonl", env=env)
    assert rows.returncode == 0, rows.stderr
    lines = [json.loads(line) for line in rows.stdout.splitlines()]
    assert len(lines) == eval_rows and {"prompt", "expected", "dataset_version"} <= set(lines[0])

    from resources.model_source.tiny_model import build_tiny_model

    base = build_tiny_model(tmp_path / "untrained")
    registered = waldinger_cli("model", "register", str(base), "--json", env=env, timeout=600)
    assert registered.returncode == 0, registered.stderr
    summary = json.loads(registered.stdout)
    assert summary["version"] == "1" and summary["created"] is True and summary["passed"] is False
    assert summary["metrics"]["exact_match"] < 0.1, "random weights answer noise"

    again = waldinger_cli("model", "register", str(base), "--json", env=env, timeout=600)
    assert json.loads(again.stdout)["version"] == "1" and json.loads(again.stdout)["created"] is False

    refused = waldinger_cli("model", "promote", "--version", "1", env=env, timeout=600)
    assert refused.returncode == 2
    assert "below the threshold 0.900" in refused.stderr, refused.stderr
    registry = EmbeddedModelRegistry(Path(env["WALDINGER_DATA_DIR"]) / "registry")
    assert registry.production(NAME) is None and registry.promotions(NAME) == []

    overridden = waldinger_cli(
        "model", "promote", "--version", "1", "--override-gate", "--reason", "INC-7 demo", env=env, timeout=600
    )
    assert overridden.returncode == 0, overridden.stderr
    (entry,) = registry.promotions(NAME)
    assert entry["override_reason"] == "INC-7 demo" and entry["gate_failures"]
