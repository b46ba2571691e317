"""The daily batch in prod: the same job script as the local run (`python -m waldinger_runtime.batch_job`),
submitted as an Azure ML command job to the GPU cluster and followed through Dagster Pipes (dagster-azure's
PipesAzureMLClient), so the rows/tokens metadata the script reports lands on the Dagster asset as it does locally.

Pipes goes through a Blob Storage container both sides can reach: Dagster writes the context there
(PipesAzureBlobStorageContextInjector) and reads the job's messages from there
(PipesAzureBlobStorageMessageReader). `run_batch_on_azureml` tells the script which account that is with
`--pipes-blob-account-url`; the script then opens Pipes with dagster_pipes' Blob Storage loader and writer and
its managed identity. The container name and blob keys travel in Pipes' own bootstrap variables.

No code is uploaded with the job (`code=` is left out): the Azure ML environment is the project's container
image, which has this package installed at the version it was built from. Uploading the working tree instead
would put a second, possibly different copy of the package first on `sys.path` (`python -m` runs from the
job's working directory) on top of the image's pinned dependencies, and would snapshot whatever the
orchestrator's checkout holds. Shipping a code change to the batch means building and registering a new image.

Azure packages are imported inside the functions, so importing this module costs nothing locally.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Command
    from azure.storage.blob import BlobServiceClient
    from dagster import AssetExecutionContext, OpExecutionContext, PipesClientCompletedInvocation

BATCH_JOB_MODULE = "waldinger_runtime.batch_job"
MODEL_INPUT = "model"
REQUESTS_INPUT = "requests"
RESULTS_OUTPUT = "results"
RESULTS_FILE = "results.jsonl"
DEFAULT_EXPERIMENT = "waldinger-batch"
BATCH_SIZE_FLAG = "--batch-size"
FINGERPRINT_FLAG = "--fingerprint"
# batch_job's option naming the storage account of the Pipes container; added by run_batch_on_azureml.
PIPES_BLOB_ACCOUNT_FLAG = "--pipes-blob-account-url"


class AzureMLBatchError(RuntimeError):
    """The Azure ML batch job failed, was canceled or left no results; the message names the job and where
    to read its logs."""


def batch_command(
    *,
    model_uri: str,
    requests_file: Path,
    compute: str,
    environment: str,
    batch_size: int = 16,
    fingerprint: str = "",
    display_name: str,
    experiment_name: str = DEFAULT_EXPERIMENT,
    tags: dict[str, str] | None = None,
) -> Command:
    """The Azure ML command job that runs the batch script on `compute`.

    `model_uri` is a registered model version (`azureml:mistral-7b-instruct:7`), mounted read-only;
    `requests_file` is a local OpenAI batch JSONL that the SDK uploads to the workspace datastore on submit;
    `environment` is the Azure ML environment of the project's image (`waldinger-serving@latest`,
    `azureml:waldinger-serving:3`). The script writes `results.jsonl` into the job's `results` output folder.
    """
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.constants import AssetTypes

    requests_file = Path(requests_file)
    if not requests_file.is_file():
        raise FileNotFoundError(
            f"Batch requests file {requests_file} does not exist; write the OpenAI batch JSONL there first."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return command(
        command=(
            f"python -m {BATCH_JOB_MODULE}"
            f" --model ${{{{inputs.{MODEL_INPUT}}}}}"
            f" --input ${{{{inputs.{REQUESTS_INPUT}}}}}"
            f" --output ${{{{outputs.{RESULTS_OUTPUT}}}}}/{RESULTS_FILE}"
            f" {BATCH_SIZE_FLAG} {batch_size}"
            + (f" {FINGERPRINT_FLAG} {shlex.quote(fingerprint)}" if fingerprint else "")
        ),
        inputs={
            MODEL_INPUT: Input(type=AssetTypes.CUSTOM_MODEL, path=model_uri),
            REQUESTS_INPUT: Input(type=AssetTypes.URI_FILE, path=str(requests_file)),
        },
        outputs={RESULTS_OUTPUT: Output(type=AssetTypes.URI_FOLDER)},
        environment=environment,
        compute=compute,
        display_name=display_name,
        experiment_name=experiment_name,
        tags=dict(tags or {}),
    )


def run_batch_on_azureml(
    context: AssetExecutionContext | OpExecutionContext,
    *,
    ml_client: MLClient,
    blob_service_client: BlobServiceClient,
    pipes_container: str,
    command: Command,
    output_file: Path,
    download_dir: Path,
    extras: dict | None = None,
    poll_interval_seconds: float = 5,
) -> tuple[PipesClientCompletedInvocation, str]:
    """Submits `command` as a new Azure ML job, follows it through Pipes until it ends, and moves the job's
    `results/results.jsonl` to `output_file`. Returns the Pipes invocation (its results carry what the script
    reported) and the job's name.

    Each call submits a job under a fresh name, so a run that failed can simply be run again. `output_file`
    appears only once the whole file is downloaded (rename from a temporary file next to it), and nothing is
    left in `download_dir`. A failed or canceled job, or one without results, raises AzureMLBatchError.
    """
    invocation, job_name = run_command_on_azureml(
        context,
        ml_client=ml_client,
        blob_service_client=blob_service_client,
        pipes_container=pipes_container,
        command=command,
        extras=extras,
        poll_interval_seconds=poll_interval_seconds,
    )
    _download_results(ml_client, job_name, Path(output_file), Path(download_dir))
    context.log.info(f"Azure ML batch job {job_name} completed; results in {output_file}.")
    return invocation, job_name


def run_command_on_azureml(
    context: AssetExecutionContext | OpExecutionContext,
    *,
    ml_client: MLClient,
    blob_service_client: BlobServiceClient,
    pipes_container: str,
    command: Command,
    extras: dict | None = None,
    poll_interval_seconds: float = 5,
    what: str = "batch job",
) -> tuple[PipesClientCompletedInvocation, str]:
    """Submits `command` (a job script of waldinger_runtime that opens Pipes with `--pipes-blob-account-url`) as a
    new Azure ML job under a fresh name and follows it through Pipes until it ends. Returns the Pipes invocation
    and the job's name; a failed or canceled job raises AzureMLBatchError naming the job and where its logs are."""
    from dagster_azure.pipes import (
        PipesAzureBlobStorageContextInjector,
        PipesAzureBlobStorageMessageReader,
        PipesAzureMLClient,
    )

    from resources.dagster_internals import DagsterPipesExecutionError

    pipes_client = PipesAzureMLClient(
        client=ml_client,
        context_injector=PipesAzureBlobStorageContextInjector(container=pipes_container, client=blob_service_client),
        message_reader=PipesAzureBlobStorageMessageReader(
            container=pipes_container, client=blob_service_client, interval=poll_interval_seconds
        ),
        poll_interval_seconds=poll_interval_seconds,
    )
    # PipesAzureMLClient does not say which job failed, and writes its bootstrap variables into the command;
    # naming the job here keeps the name at hand, and the caller's command is put back as it was afterwards.
    # (Command cannot be deep-copied: azure-ai-ml's input dict raises KeyError for __deepcopy__.)
    original = command.name, command.command, dict(command.environment_variables or {})
    job_name = _fresh_job_name(command.experiment_name or DEFAULT_EXPERIMENT)
    command.name = job_name
    command.command = f"{original[1]} {PIPES_BLOB_ACCOUNT_FLAG} {_account_url(blob_service_client)}"
    context.log.info(f"Submitting Azure ML {what} {job_name} to compute {command.compute}.")
    try:
        invocation = pipes_client.run(context=context, command=command, extras=extras)
    except DagsterPipesExecutionError as exc:
        raise _job_failed(ml_client, job_name, what) from exc
    finally:
        command.name, command.command, command.environment_variables = original
    return invocation, job_name


def connect_ml_client(
    subscription_id: str, resource_group: str, workspace: str, credential=None, **kwargs: Any
) -> MLClient:
    """An MLClient for the workspace; DefaultAzureCredential when no credential is given. `kwargs` go to
    MLClient and its azure-core pipeline (e.g. `transport`)."""
    from azure.ai.ml import MLClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return MLClient(
        credential=credential,
        subscription_id=subscription_id,
        resource_group_name=resource_group,
        workspace_name=workspace,
        enable_telemetry=False,
        show_progress=False,
        **kwargs,
    )


def connect_blob_service(account_url: str, credential=None, **kwargs: Any) -> BlobServiceClient:
    """A BlobServiceClient for the account that holds the Pipes container; DefaultAzureCredential when no
    credential is given."""
    from azure.storage.blob import BlobServiceClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return BlobServiceClient(account_url, credential=credential, **kwargs)


def _fresh_job_name(prefix: str) -> str:
    # Job names are unique per workspace: letters, digits, '-' and '_', starting with a letter or digit.
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", prefix).strip("-_") or DEFAULT_EXPERIMENT
    return f"{slug[:200]}-{uuid.uuid4().hex[:12]}"


def _account_url(client: BlobServiceClient) -> str:
    # Not client.url: that carries a SAS token when the client was built with one, and a job's command line
    # is visible in Azure ML studio.
    return f"{client.scheme}://{client.primary_hostname}"


def _where_to_look(ml_client: MLClient, job_name: str, studio_url: str | None) -> str:
    stream = f"az ml job stream -n {job_name} -g {ml_client.resource_group_name} -w {ml_client.workspace_name}"
    page = studio_url or f"the job's page in Azure ML studio (workspace {ml_client.workspace_name})"
    return f"see {page}, or run `{stream}`"


def _job_failed(ml_client: MLClient, job_name: str, what: str = "batch job") -> AzureMLBatchError:
    status, studio_url = "unsuccessfully", None
    try:
        job = ml_client.jobs.get(job_name)
        # JobStatus is a str enum: its str() reads "JobStatus.FAILED", its value "Failed".
        status, studio_url = str(getattr(job.status, "value", job.status)), job.studio_url
    except Exception:  # the look-up only adds detail; the job's name is what the reader needs
        pass
    return AzureMLBatchError(
        f"Azure ML {what} {job_name} ended {status}; no results were downloaded. For its logs "
        f"{_where_to_look(ml_client, job_name, studio_url)}. Fix the cause and run the asset again: "
        "it submits a new job."
    )


def _download_results(ml_client: MLClient, job_name: str, output_file: Path, download_dir: Path) -> None:
    staging = download_dir / job_name
    partial = output_file.with_name(f".{output_file.name}.{job_name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        # jobs.download logs (at debug level) and returns normally when the output is missing.
        ml_client.jobs.download(job_name, download_path=str(staging), output_name=RESULTS_OUTPUT)
        downloaded = staging / "named-outputs" / RESULTS_OUTPUT / RESULTS_FILE
        if not downloaded.is_file():
            found = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            raise AzureMLBatchError(
                f"Azure ML batch job {job_name} completed but its {RESULTS_OUTPUT!r} output holds no "
                f"{RESULTS_FILE} (downloaded: {', '.join(found) or 'nothing'}). The job script must write "
                f"--output ${{{{outputs.{RESULTS_OUTPUT}}}}}/{RESULTS_FILE}; for its logs "
                f"{_where_to_look(ml_client, job_name, None)}."
            )
        output_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(downloaded, partial)
        os.replace(partial, output_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
