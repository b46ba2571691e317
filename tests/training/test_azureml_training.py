"""The prod training path at its HTTP boundary: azure-ai-ml, azure-storage-blob and dagster-azure's Pipes client
run for real against the fakes of Azure's endpoints (tests/fakes/azure_ml*.py), inside a real Dagster
materialization. The submitted job runs the project's own training script on the tiny model in the fake
cluster's subprocess, and its merged model comes back through the job's `model` output."""

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize

from resources.demo_tickets import tickets
from resources.model_source.tiny_model import build_tiny_model
from resources.serving import reported_figures
from resources.serving.azureml_batch import AzureMLBatchError, connect_blob_service, connect_ml_client
from resources.training import TrainingComputeResource, TrainingInputs
from resources.training.azureml_job import run_training_on_azureml, training_command
from tests.fakes.azure_ml import (
    RG,
    SUB,
    WORKSPACE_ID,
    WS,
    FakeCredential,
    FakeTransport,
    block_real_network,
    install_routes,
    patch_blob_storage,
)
from tests.fakes.azure_ml_jobs import install_job_routes
from tests.fakes.blob_storage import ACCOUNT_URL
from waldinger_runtime.artifact import artifact_sha256, validate_artifact
from waldinger_runtime.jsonl import write_jsonl

BASE_URI = "azureml:mistral-7b-instruct:7"
PIPES_CONTAINER = "dagster-pipes"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def azure(monkeypatch, tmp_path_factory, tiny_model, tmp_path) -> Iterator[tuple]:
    block_real_network(monkeypatch)
    # Azure ML sets the workspace's tracking URI inside a job; the fake node inherits this one.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    transport = FakeTransport()
    install_routes(transport)
    jobs = install_job_routes(
        transport,
        tmp_path_factory.mktemp("azure"),
        models={"mistral-7b-instruct:7": tiny_model},
        environments={"waldinger-training": ["1", "2"]},
    )
    patch_blob_storage(transport, monkeypatch)
    ml_client = connect_ml_client(SUB, RG, WS, credential=FakeCredential(), transport=transport)
    blobs = connect_blob_service(ACCOUNT_URL, credential=FakeCredential(), transport=transport)
    yield transport, jobs, ml_client, blobs
    jobs.close()


def _inputs(folder: Path, train_rows: int = 40) -> TrainingInputs:
    rows = [{"prompt": t.prompt, "expected": t.expected} for t in tickets(31, train_rows + 8)]
    write_jsonl(folder / "train.jsonl", rows[:train_rows])
    write_jsonl(folder / "eval.jsonl", rows[train_rows:])
    return TrainingInputs(
        base_model_dir=None,
        base_model_uri=BASE_URI,
        base_model_name="azureml:mistral-7b-instruct:7",
        train_file=folder / "train.jsonl",
        eval_file=folder / "eval.jsonl",
        dataset_version="e" * 64,
        code_version="abc123",
    )


def _train(azure, inputs: TrainingInputs, output_dir: Path, download_dir: Path):
    _, _, ml_client, blobs = azure
    settings = TrainingComputeResource(method="lora", steps=3, batch_size=4, learning_rate=2e-4)
    outcome: dict = {}

    @asset(name="fine_tuned")
    def fine_tuned(context: AssetExecutionContext) -> MaterializeResult:
        command = training_command(
            inputs,
            compute="waldinger-training",
            environment="waldinger-training@latest",
            arguments=settings.job_arguments(inputs, context.run.run_id),
            display_name="waldinger training test",
            experiment_name="waldinger-fine-tuning",
            tags={"dagster_run_id": context.run.run_id},
        )
        invocation, job_name = run_training_on_azureml(
            context,
            ml_client=ml_client,
            blob_service_client=blobs,
            pipes_container=PIPES_CONTAINER,
            command=command,
            output_dir=output_dir,
            download_dir=download_dir,
            poll_interval_seconds=0.01,
        )
        outcome.update(job_name=job_name, figures=reported_figures(invocation))
        return MaterializeResult()

    result = materialize([fine_tuned], instance=DagsterInstance.ephemeral(), raise_on_error=False)
    return result, outcome


def test_the_training_job_runs_on_the_cluster_and_its_merged_model_comes_back(azure, tmp_path):
    _, jobs, _, _ = azure
    inputs = _inputs(tmp_path)
    output_dir = tmp_path / "trained" / "model"
    result, outcome = _train(azure, inputs, output_dir, tmp_path / "downloads")
    assert result.success
    (body,) = jobs.put_bodies()
    props = body["properties"]
    assert props["computeId"] == f"{WORKSPACE_ID}/computes/waldinger-training"
    assert props["environmentId"] == f"{WORKSPACE_ID}/environments/waldinger-training/versions/2"  # @latest
    assert props["inputs"]["base_model"] == {
        "jobInputType": "custom_model",
        "uri": f"{WORKSPACE_ID}/models/mistral-7b-instruct/versions/7",
    }
    assert props["inputs"]["train"]["jobInputType"] == props["inputs"]["eval"]["jobInputType"] == "uri_file"
    assert props["outputs"]["model"]["jobOutputType"] == "uri_folder"
    job = jobs.jobs[outcome["job_name"]]
    words = shlex.split(job.command_line)
    assert words[:3] == ["python", "-m", "waldinger_runtime.training.job"]
    assert words[words.index("--method") + 1] == "lora" and words[words.index("--dataset-version") + 1] == "e" * 64
    # The merged model the job wrote is what came back, and the job's figures reached Dagster through Pipes.
    validate_artifact(output_dir)
    figures = outcome["figures"]
    assert figures["job_artifact_sha256"] == artifact_sha256(output_dir)
    assert figures["job_method"] == "lora" and figures["job_steps"] == 3 and len(figures["job_mlflow_run_id"]) == 32
    assert not any(p.is_file() for p in (tmp_path / "downloads").rglob("*")), "nothing left in the download folder"
    assert json.loads((output_dir / "config.json").read_text())["model_type"] == "mistral"


def test_a_failed_training_job_names_the_job_and_leaves_no_model(azure, tmp_path):
    inputs = _inputs(tmp_path, train_rows=0)  # an empty train split: the script refuses to train
    output_dir = tmp_path / "trained" / "model"
    result, _ = _train(azure, inputs, output_dir, tmp_path / "downloads")
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert any("Azure ML training job" in m and "ended Failed" in m for m in messages), messages
    assert not output_dir.exists()
    assert AzureMLBatchError.__name__ in {c.cls_name for c in [failure.step_failure_data.error.cause] if c}
