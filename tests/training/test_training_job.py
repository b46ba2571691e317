"""The training job script (waldinger_runtime.training.job) run by hand, as Dagster's subprocess runs it: full
fine-tuning and LoRA on the tiny base, tracked in a real MLflow sqlite store."""

import json
import math
from pathlib import Path

import pytest

from resources.demo_tickets import tickets
from resources.model_source.tiny_model import build_tiny_model
from waldinger_runtime.artifact import artifact_sha256, validate_artifact
from waldinger_runtime.jsonl import write_jsonl
from waldinger_runtime.training.job import main
from waldinger_runtime.training.loop import TrainingParameters, learning_rate_factor


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("base") / "tiny")


def _splits(folder: Path) -> tuple[Path, Path]:
    rows = [{"prompt": t.prompt, "expected": t.expected} for t in tickets(21, 240)]
    write_jsonl(folder / "train.jsonl", rows[:200])
    write_jsonl(folder / "eval.jsonl", rows[200:])
    return folder / "train.jsonl", folder / "eval.jsonl"


def _run(tmp_path: Path, base_model: Path, monkeypatch, capsys, *extra: str) -> dict:
    train, evaluation = _splits(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    argv = ["--base-model", str(base_model), "--train", str(train), "--eval", str(evaluation)]
    argv += ["--output", str(tmp_path / "model"), "--dataset-version", "d" * 64, "--code-version", "abc123"]
    assert main([*argv, "--threads", "2", *extra]) == 0
    return json.loads(capsys.readouterr().err.strip().splitlines()[-1])


def test_full_fine_tuning_learns_and_is_tracked_in_mlflow(tmp_path, base_model, monkeypatch, capsys):
    import mlflow

    figures = _run(tmp_path, base_model, monkeypatch, capsys, "--steps", "40", "--batch-size", "8")
    assert figures["method"] == "full" and figures["steps"] == 40 and figures["train_rows"] == 200
    assert figures["eval_rows"] == 40 and 0.0 <= figures["eval_exact_match"] <= 1.0
    validate_artifact(tmp_path / "model")
    assert figures["artifact_sha256"] == artifact_sha256(tmp_path / "model")

    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(figures["mlflow_run_id"])
    assert run.data.params["method"] == "full" and run.data.params["steps"] == "40"
    assert run.data.tags["training_dataset_version"] == "d" * 64 and run.data.tags["code_version"] == "abc123"
    assert run.data.tags["artifact_sha256"] == figures["artifact_sha256"]
    losses = [metric.value for metric in client.get_metric_history(run.info.run_id, "loss")]
    assert len(losses) == 5, "every 10th step and the last"
    assert losses[-1] < losses[0] / 2, f"the loss falls: {losses}"
    assert {"eval_exact_match", "eval_parse_rate", "final_loss"} <= set(run.data.metrics)
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "training_dataset" and dataset_input.dataset.digest == ("d" * 64)[:36]


def test_lora_trains_adapters_only_and_saves_them_merged(tmp_path, base_model, monkeypatch, capsys):
    from safetensors import safe_open

    figures = _run(tmp_path, base_model, monkeypatch, capsys, "--method", "lora", "--steps", "3", "--batch-size", "4")
    assert figures["method"] == "lora"
    total = json.loads((tmp_path / "model" / "config.json").read_text())
    assert total["model_type"] == "mistral"
    assert 0 < figures["trainable_parameters"] < 200_000, "only the adapters train"
    (weights,) = (tmp_path / "model").glob("*.safetensors")
    with safe_open(weights, "pt") as handle:
        names = list(handle.keys())
    assert names and not [name for name in names if "lora" in name], "merged: plain weights, no adapter tensors"
    base_names = set()
    for path in base_model.glob("*.safetensors"):
        with safe_open(path, "pt") as handle:
            base_names |= set(handle.keys())
    assert set(names) == base_names, "the same tensors as the base, so both engines load it as the base"


def test_bad_parameters_are_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="method must be one of full, lora"):
        TrainingParameters(method="qlora")
    with pytest.raises(ValueError, match="steps and batch_size must be at least 1"):
        TrainingParameters(steps=0)
    assert learning_rate_factor(0, 100, 0.05) == pytest.approx(0.2)
    assert learning_rate_factor(4, 100, 0.05) == pytest.approx(0.5 * (1 + math.cos(0.04 * math.pi)))
    assert learning_rate_factor(100, 100, 0.05) == pytest.approx(0.0, abs=1e-9)
