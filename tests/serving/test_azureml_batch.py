"""The prod batch path at its HTTP boundary: azure-ai-ml, azure-storage-blob and dagster-azure's Pipes client
run for real against fakes of Azure's endpoints (tests/fakes/azure_ml.py, tests/fakes/azure_ml_jobs.py), inside
a real Dagster materialization. The submitted job runs the project's own batch script on the tiny model, in a
subprocess of the fake's cluster, with the job's command line and environment: it opens Pipes with dagster_pipes'
Blob Storage loader and writer over the same fake Blob Storage the Dagster side reads, as on the cluster."""

import json
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize
from dagster_pipes import decode_param

from resources.model_source.tiny_model import build_tiny_model
from resources.serving.azureml_batch import (
    PIPES_BLOB_ACCOUNT_FLAG,
    RESULTS_FILE,
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
from tests.fakes.azure_ml_jobs import FakeJob, FakeJobService, install_job_routes
from tests.fakes.blob_storage import ACCOUNT_URL
from waldinger_runtime.engine import TransformersEngine
from waldinger_runtime.openai_server import parse_chat_request

PIPES_CONTAINER = "dagster-pipes"
MODEL_URI = "azureml:mistral-7b-instruct:7"
MODEL_VERSION = "mistral-7b-instruct:7"  # what the fake cluster mounts for MODEL_URI
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


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def broken_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its weights cut short, as a failing disk leaves them."""
    broken = shutil.copytree(tiny_model, tmp_path_factory.mktemp("broken") / tiny_model.name)
    (broken / "model.safetensors").write_bytes(b"truncated by a failing disk")
    return broken


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> TransformersEngine:
    return TransformersEngine(tiny_model)


@pytest.fixture
def azure(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path
) -> Iterator[Azure]:
    block_real_network(monkeypatch)
    transport = FakeTransport()
    install_routes(transport)
    jobs = install_job_routes(transport, tmp_path_factory.mktemp("azure"), models={MODEL_VERSION: tiny_model})
    patch_blob_storage(transport, monkeypatch)
    yield Azure(
        transport=transport,
        jobs=jobs,
        ml_client=connect_ml_client(SUB, RG, WS, credential=FakeCredential(), transport=transport),
        blob_service=connect_blob_service(ACCOUNT_URL, credential=FakeCredential(), transport=transport),
    )
    jobs.close()


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in REQUESTS))
    return path


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


def _materialize(azure: Azure, command, output_file: Path, download_dir: Path):
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


def _option(command_line: str, flag: str) -> str:
    words = shlex.split(command_line)
    assert flag in words, f"{flag} is not on the command line: {command_line}"
    return words[words.index(flag) + 1]


def _results_written_by(job: FakeJob) -> bytes:
    """The results file the job's script wrote into its `results` output folder on the cluster."""
    return (job.mounted("outputs", "results") / RESULTS_FILE).read_bytes()


def _assert_the_tiny_model_answered_every_request(results: bytes, engine: TransformersEngine) -> list[dict]:
    lines = [json.loads(line) for line in results.decode().splitlines()]
    assert [line["custom_id"] for line in lines] == [r["custom_id"] for r in REQUESTS]
    assert [line["response"]["status_code"] for line in lines] == [200] * len(REQUESTS)
    # Greedy decoding: each answer is what the tiny model says to that request on its own.
    expected = [engine.generate([parse_chat_request(r["body"], engine.context_window)])[0] for r in REQUESTS]
    bodies = [line["response"]["body"] for line in lines]
    assert [b["choices"][0]["message"]["content"] for b in bodies] == [e.text for e in expected]
    assert [b["usage"]["completion_tokens"] for b in bodies] == [e.completion_tokens for e in expected]
    assert all(e.completion_tokens > 0 for e in expected)
    return lines


def _pipes_messages(azure: Azure, key_prefix: str) -> list[dict]:
    """The Pipes messages in the Pipes container under `key_prefix`, chunk by chunk (1.json, 2.json, ...)."""
    chunks = sorted(
        (key for key in azure.transport.blobs if key.startswith(f"{PIPES_CONTAINER}/{key_prefix}/")),
        key=lambda key: int(key.rsplit("/", 1)[1].removesuffix(".json")),
    )
    assert chunks, f"no Pipes messages under {PIPES_CONTAINER}/{key_prefix}/"
    lines = [line for key in chunks for line in azure.transport.blobs[key]["data"].decode().splitlines()]
    return [json.loads(line) for line in lines if line.strip()]


def _figures_printed(job: FakeJob) -> dict:
    """The figures batch_job prints (as JSON, last) to stderr when it is done."""
    printed = [line for line in job.std_log.splitlines() if line.startswith('{"rows"')]
    assert printed, f"the job printed no figures; its log:\n{job.std_log}"
    return json.loads(printed[-1])


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
    azure: Azure, requests_file: Path, tmp_path: Path, engine: TransformersEngine
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
    # The cluster ran the project's script with the job's own command line, on the paths Azure ML gives it:
    # the model mounted with its folder inside, the requests the SDK uploaded, the results output folder.
    assert shlex.split(job.command_line)[:3] == ["python", "-m", "waldinger_runtime.batch_job"]
    assert _option(job.command_line, "--model") == str(job.mounted("inputs", "model"))
    assert Path(_option(job.command_line, "--input")).read_bytes() == requests_file.read_bytes()
    assert _option(job.command_line, "--output") == f"{job.mounted('outputs', 'results')}/{RESULTS_FILE}"
    assert _option(job.command_line, PIPES_BLOB_ACCOUNT_FLAG) == ACCOUNT_URL

    # The job's own process opened Pipes over Blob Storage: it read the context Dagster injected (then deleted)
    # and wrote its messages into the Pipes container, where Dagster read them.
    context_blob = f"/{PIPES_CONTAINER}/{context_params['key']}"
    (injected,) = [r for r in azure.transport.requests if r["method"] == "PUT" and r["path"] == context_blob]
    context = json.loads(injected["body"])
    assert (context["asset_keys"], context["extras"]) == ([ASSET], {"partition": "2024-01-01"})
    job_blob_requests = [(r["method"], r["host"], r["path"], r["status"]) for r in job.blob_requests()]
    account_host = ACCOUNT_URL.removeprefix("https://")
    first_method, first_host, first_path, first_status = job_blob_requests[0]
    assert (first_method, first_host, first_path) == ("GET", account_host, context_blob)
    assert first_status in (200, 206)  # the SDK downloads with a range
    chunk_puts = [r for r in job_blob_requests if r[0] == "PUT"]
    messages_prefix = f"/{PIPES_CONTAINER}/{messages_params['key_prefix']}/"
    assert chunk_puts and all(path.startswith(messages_prefix) and status == 201 for _, _, path, status in chunk_puts)
    assert f"{PIPES_CONTAINER}/{context_params['key']}" not in azure.transport.blobs
    messages = _pipes_messages(azure, messages_params["key_prefix"])
    assert messages[0]["method"] == "opened"
    assert (messages[-1]["method"], messages[-1]["params"]) == ("closed", {})  # closed without an exception
    (reported,) = [m["params"] for m in messages if m["method"] == "report_asset_materialization"]
    assert reported["asset_key"] == ASSET  # the script names none: its Pipes took it from the context it read
    reported_figures = {key: value["raw_value"] for key, value in reported["metadata"].items()}
    (model_folder,) = job.mounted("inputs", "model").iterdir()
    loading = f"batch job: loading {model_folder}"
    assert {"message": loading, "level": "INFO"} in [m["params"] for m in messages if m["method"] == "log"]

    # What the job wrote is what the asset got: the tiny model's answers, one line per request in order.
    assert output_file.read_bytes() == _results_written_by(job)
    lines = _assert_the_tiny_model_answered_every_request(output_file.read_bytes(), engine)
    assert list(output_file.parent.iterdir()) == [output_file]  # no temporary file left beside it
    assert _no_files_under(tmp_path / "downloads")
    # What the script reported through Pipes is on the materialization: its job_* figures, as it printed them.
    (materialization,) = result.asset_materializations_for_node(ASSET)
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    figures = _figures_printed(job)
    assert {key: metadata[key] for key in reported_figures} == reported_figures
    assert reported_figures == {f"job_{key}": value for key, value in figures.items()}
    usage = [line["response"]["body"]["usage"] for line in lines]
    assert metadata["job_rows"] == 2 and metadata["job_rows_ok"] == 2 and metadata["job_rows_failed"] == 0
    assert metadata["job_prompt_tokens"] == sum(u["prompt_tokens"] for u in usage)
    assert metadata["job_completion_tokens"] == sum(u["completion_tokens"] for u in usage) > 0
    assert metadata["job_completion_tokens_per_second"] > 0 and metadata["job_engine"] == "transformers"
    assert metadata["AzureML Job Name"] == job_name
    # The caller's command is left as it was given.
    assert command.name is None and command.environment_variables == {}
    assert command.command.endswith("--batch-size 8")


def test_a_failed_job_names_the_job_leaves_no_output_and_can_be_run_again(
    azure: Azure, requests_file: Path, tmp_path: Path, tiny_model: Path, broken_model: Path, engine: TransformersEngine
) -> None:
    output_file = tmp_path / "results.jsonl"
    command = _command(requests_file)
    azure.jobs.models[MODEL_VERSION] = broken_model  # the node the first job lands on has a failing disk

    result, job_names, instance = _materialize(azure, command, output_file, tmp_path / "downloads")

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
    assert not (failed.mounted("outputs", "results") / RESULTS_FILE).exists()  # the script wrote nothing
    # What the job logged and the exception it died of reached the run's logs through Pipes.
    logs = instance.all_logs(result.run_id)
    (model_folder,) = failed.mounted("inputs", "model").iterdir()
    assert any(log.user_message == f"batch job: loading {model_folder}" for log in logs)
    (closed,) = [log for log in logs if "closed with exception" in log.user_message]
    died_of = closed.dagster_event.engine_event_data.error
    assert died_of.cls_name == "SafetensorError" and "Error while deserializing header" in died_of.message

    azure.jobs.models[MODEL_VERSION] = tiny_model  # the next job lands on a healthy node
    downloads = tmp_path / "downloads"
    rerun, (job_name,), _ = _materialize(azure, command, output_file, downloads)

    assert rerun.success, _step_error(rerun)
    assert job_name != failed.name and azure.jobs.jobs[job_name].status == "Completed"
    assert output_file.read_bytes() == _results_written_by(azure.jobs.jobs[job_name])
    _assert_the_tiny_model_answered_every_request(output_file.read_bytes(), engine)


def test_a_completed_job_without_results_is_an_error_and_leaves_no_output(
    azure: Azure, requests_file: Path, tmp_path: Path
) -> None:
    output_file = tmp_path / "results.jsonl"
    command = _command(requests_file)
    # The script runs and writes its results, but under another name than the one Dagster downloads.
    command.command = command.command.replace(f"/{RESULTS_FILE} ", "/answers.jsonl ")

    result, _, _ = _materialize(azure, command, output_file, tmp_path / "downloads")

    assert not result.success
    (job,) = azure.jobs.created()
    assert job.status == "Completed"
    assert (job.mounted("outputs", "results") / "answers.jsonl").is_file()  # the script did run and write
    error = _step_error(result)
    assert f"Azure ML batch job {job.name} completed but its 'results' output holds no results.jsonl" in error
    assert "(downloaded: named-outputs/results/answers.jsonl)" in error
    assert not output_file.exists() and _no_files_under(tmp_path / "downloads")
