"""The prod batch path at its HTTP boundary: azure-ai-ml, azure-storage-blob and dagster-azure's Pipes client
run for real against fakes of Azure's endpoints (tests/fakes/azure_ml.py, tests/fakes/azure_ml_jobs.py), inside
a real Dagster materialization. The "remote job" is a function the fake runs while the job is Running; it
talks Pipes through the fake Blob Storage with dagster_pipes' own loader and writer, as the script does on
the cluster."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize
from dagster_pipes import (
    PipesAzureBlobStorageContextLoader,
    PipesAzureBlobStorageMessageWriter,
    PipesContext,
    PipesMappingParamsLoader,
    decode_param,
)

from resources.serving.azureml_batch import (
    PIPES_BLOB_ACCOUNT_FLAG,
    AzureMLBatchError,
    batch_command,
    connect_blob_service,
    connect_ml_client,
    run_batch_on_azureml,
)
from tests.fakes.azure_ml import (
    CONTAINER,
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
from tests.fakes.azure_ml_jobs import ACCOUNT_URL, FakeJobService, RemoteJob, install_job_routes

PIPES_CONTAINER = "dagster-pipes"
MODEL_URI = "azureml:mistral-7b-instruct:7"
COMPUTE = "gpu-cluster"
ASSET = "batch_results"
REQUESTS = [
    {
        "custom_id": f"req-{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "mistral-7b-instruct", "messages": [{"role": "user", "content": f"Question {i}?"}]},
    }
    for i in range(2)
]


@dataclass
class Azure:
    transport: FakeTransport
    jobs: FakeJobService
    ml_client: object
    blob_service: object


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Azure:
    block_real_network(monkeypatch)
    transport = FakeTransport()
    install_routes(transport)
    jobs = install_job_routes(transport, script=_answer_every_request)
    patch_blob_storage(transport, monkeypatch)
    return Azure(
        transport=transport,
        jobs=jobs,
        ml_client=connect_ml_client(SUB, RG, WS, credential=FakeCredential(), transport=transport),
        blob_service=connect_blob_service(ACCOUNT_URL, credential=FakeCredential(), transport=transport),
    )


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in REQUESTS))
    return path


# ---- the remote side: what batch_job does on the cluster ------------------------------------------
def _open_pipes(job: RemoteJob) -> PipesContext:
    """What batch_job does with --pipes-blob-account-url, with the fake's transport and credential instead of
    its managed identity, the job's environment instead of os.environ, and without open_dagster_pipes'
    process-wide singleton (the fake runs several "processes" in this one)."""
    from azure.storage.blob import BlobServiceClient

    account_url = job.option(PIPES_BLOB_ACCOUNT_FLAG)
    client = BlobServiceClient(account_url, credential=FakeCredential(), transport=job.transport)
    return PipesContext(
        PipesMappingParamsLoader(job.environment_variables),
        PipesAzureBlobStorageContextLoader(client=client),
        PipesAzureBlobStorageMessageWriter(client=client),
    )


def _results_for(requests: list[dict]) -> bytes:
    lines = [
        {
            "id": f"batch_req_{i}",
            "custom_id": r["custom_id"],
            "response": {
                "status_code": 200,
                "request_id": f"r{i}",
                "body": {"choices": [{"message": {"role": "assistant", "content": f"Answer {i}."}}]},
            },
            "error": None,
        }
        for i, r in enumerate(requests)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _answer_every_request(job: RemoteJob) -> dict:
    requests = [json.loads(line) for line in job.read_input("requests").decode().splitlines()]
    with _open_pipes(job) as pipes:
        job.write_output("results", "results.jsonl", _results_for(requests))
        pipes.report_asset_materialization(metadata={"rows": len(requests), "tokens": 42, "tokens_per_s": 21.0})
        return {"asset_key": pipes.asset_key, "extras": dict(pipes.extras), "requests": requests}


def _crash(job: RemoteJob) -> None:
    with _open_pipes(job) as pipes:
        pipes.log.info("loading the model")
        raise RuntimeError("CUDA out of memory")


def _forget_the_results(job: RemoteJob) -> None:
    with _open_pipes(job) as pipes:
        pipes.report_asset_materialization(metadata={"rows": 0})


# ---- the Dagster side ------------------------------------------------------------------------------
def _command(requests_file: Path, environment: str = "waldinger-serving@latest"):
    return batch_command(
        model_uri=MODEL_URI,
        requests_file=requests_file,
        compute=COMPUTE,
        environment=environment,
        batch_size=8,
        display_name="daily batch 2024-01-01",
        tags={"partition": "2024-01-01"},
    )


def _materialize(azure: Azure, command, output_file: Path, download_dir: Path, script: Callable | None = None):
    if script is not None:
        azure.jobs.script = script
    job_names: list[str] = []

    @asset(name=ASSET)
    def batch_results(context: AssetExecutionContext) -> MaterializeResult:
        invocation, job_name = run_batch_on_azureml(
            context,
            ml_client=azure.ml_client,
            blob_service_client=azure.blob_service,
            pipes_container=PIPES_CONTAINER,
            command=command,
            output_file=output_file,
            download_dir=download_dir,
            extras={"partition": "2024-01-01"},
            poll_interval_seconds=0.01,
        )
        job_names.append(job_name)
        return invocation.get_materialize_result()

    instance = DagsterInstance.ephemeral()
    result = materialize([batch_results], instance=instance, raise_on_error=False)
    return result, job_names, instance


def _no_files_under(directory: Path) -> bool:
    return not any(p.is_file() for p in directory.rglob("*"))


def _step_error(result) -> str:
    """The step's error with its causes (Dagster wraps the asset's exception)."""
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(f"{error.cls_name}: {error.message}")
        error = error.cause
    return "\n".join(messages)


# ---- tests -----------------------------------------------------------------------------------------
def test_the_command_runs_the_batch_script_on_the_cluster_with_the_model_and_requests(requests_file) -> None:
    from azure.ai.ml.constants import AssetTypes

    command = _command(requests_file, environment="azureml:waldinger-serving:3")
    assert command.command == (
        "python -m waldinger_runtime.batch_job --model ${{inputs.model}} --input ${{inputs.requests}}"
        " --output ${{outputs.results}}/results.jsonl --batch-size 8"
    )
    assert (command.inputs.model.type, command.inputs.model.path) == (AssetTypes.CUSTOM_MODEL, MODEL_URI)
    assert (command.inputs.requests.type, command.inputs.requests.path) == (AssetTypes.URI_FILE, str(requests_file))
    assert command.outputs.results.type == AssetTypes.URI_FOLDER
    assert (command.compute, command.environment) == (COMPUTE, "azureml:waldinger-serving:3")
    assert (command.experiment_name, command.display_name) == ("waldinger-batch", "daily batch 2024-01-01")
    assert command.tags == {"partition": "2024-01-01"}
    assert command.code is None  # the image has the package installed

    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl does not exist"):
        _command(requests_file.with_name("missing.jsonl"))


def test_the_job_is_submitted_polled_and_its_results_and_metadata_reach_dagster(
    azure: Azure, requests_file: Path, tmp_path: Path
) -> None:
    output_file = tmp_path / "out" / "results.jsonl"
    command = _command(requests_file)

    result, (job_name,), _ = _materialize(azure, command, output_file, tmp_path / "downloads")

    assert result.success, _step_error(result)
    # The job PUT: the script, the cluster, the image, the inputs and output, and Pipes' bootstrap variables.
    (body,) = azure.jobs.put_bodies()
    props = body["properties"]
    assert props["command"] == f"{command.command} {PIPES_BLOB_ACCOUNT_FLAG} {ACCOUNT_URL}"
    assert props["computeId"] == f"{WORKSPACE_ID}/computes/{COMPUTE}"
    assert props["environmentId"] == f"{WORKSPACE_ID}/environments/waldinger-serving/versions/3"  # @latest
    assert (props["experimentName"], props["displayName"]) == ("waldinger-batch", "daily batch 2024-01-01")
    assert props["tags"] == {"partition": "2024-01-01"}
    assert "codeId" not in props
    assert props["inputs"]["model"] == {
        "jobInputType": "custom_model",
        "uri": f"{WORKSPACE_ID}/models/mistral-7b-instruct/versions/7",
    }
    requests_input = props["inputs"]["requests"]
    assert requests_input["jobInputType"] == "uri_file"
    uploaded_path = requests_input["uri"].removeprefix("azureml://datastores/workspaceblobstore/paths/")
    assert azure.transport.blobs[f"{CONTAINER}/{uploaded_path}"]["data"] == requests_file.read_bytes()
    assert props["outputs"]["results"]["jobOutputType"] == "uri_folder"
    env = props["environmentVariables"]
    assert set(env) == {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    context_params = decode_param(env["DAGSTER_PIPES_CONTEXT"])
    messages_params = decode_param(env["DAGSTER_PIPES_MESSAGES"])
    assert context_params["bucket"] == messages_params["bucket"] == PIPES_CONTAINER
    assert context_params["key"].endswith("/context.json") and messages_params["key_prefix"]

    # Dagster polled the job through its life and went on only once it had completed.
    job = azure.jobs.jobs[job_name]
    assert job.statuses_seen[:2] == ["Queued", "Running"] and job.statuses_seen[-1] == "Completed"
    assert job.statuses_seen.count("Running") > 1
    # The job read the context Dagster injected (then deleted) and the requests the SDK uploaded.
    assert job.returned == {"asset_key": ASSET, "extras": {"partition": "2024-01-01"}, "requests": REQUESTS}
    assert f"{PIPES_CONTAINER}/{context_params['key']}" not in azure.transport.blobs

    # What the job wrote is what the asset got, and what it reported is on the materialization.
    assert output_file.read_bytes() == _results_for(REQUESTS)
    assert list(output_file.parent.iterdir()) == [output_file]  # no temporary file left beside it
    assert _no_files_under(tmp_path / "downloads")
    (materialization,) = result.asset_materializations_for_node(ASSET)
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["rows"] == 2 and metadata["tokens"] == 42 and metadata["tokens_per_s"] == 21.0
    assert metadata["AzureML Job Name"] == job_name
    # The caller's command is left as it was given.
    assert command.name is None and command.environment_variables == {}
    assert command.command.endswith("--batch-size 8")


def test_a_failed_job_names_the_job_leaves_no_output_and_can_be_run_again(
    azure: Azure, requests_file: Path, tmp_path: Path
) -> None:
    output_file = tmp_path / "results.jsonl"
    command = _command(requests_file)

    result, job_names, instance = _materialize(azure, command, output_file, tmp_path / "downloads", script=_crash)

    assert not result.success and job_names == []
    error = _step_error(result)
    (failed,) = azure.jobs.created()
    assert failed.status == "Failed" and failed.statuses_seen[-1] == "Failed"
    assert AzureMLBatchError.__name__ in error
    assert f"Azure ML batch job {failed.name} ended Failed" in error
    assert f"https://ml.azure.com/runs/{failed.name}" in error
    assert f"az ml job stream -n {failed.name} -g {RG} -w {WS}" in error
    assert not output_file.exists()
    assert list(tmp_path.iterdir()) == [requests_file]
    # What the job logged and the exception it died of reached the run's logs through Pipes.
    logs = instance.all_logs(result.run_id)
    assert any(log.user_message == "loading the model" for log in logs)
    (closed,) = [log for log in logs if "closed with exception" in log.user_message]
    assert "RuntimeError: CUDA out of memory" in closed.dagster_event.engine_event_data.error.message

    downloads = tmp_path / "downloads"
    rerun, (job_name,), _ = _materialize(azure, command, output_file, downloads, script=_answer_every_request)

    assert rerun.success, _step_error(rerun)
    assert job_name != failed.name and azure.jobs.jobs[job_name].status == "Completed"
    assert output_file.read_bytes() == _results_for(REQUESTS)


def test_a_completed_job_without_results_is_an_error_and_leaves_no_output(
    azure: Azure, requests_file: Path, tmp_path: Path
) -> None:
    output_file = tmp_path / "results.jsonl"

    result, _, _ = _materialize(
        azure, _command(requests_file), output_file, tmp_path / "downloads", script=_forget_the_results
    )

    assert not result.success
    (job,) = azure.jobs.created()
    assert job.status == "Completed"
    assert f"Azure ML batch job {job.name} completed but its 'results' output holds no results.jsonl" in (
        _step_error(result)
    )
    assert not output_file.exists() and _no_files_under(tmp_path / "downloads")
