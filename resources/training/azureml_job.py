"""The training job in prod: `python -m waldinger_runtime.training.job` as an Azure ML command job on the GPU
cluster (min 0 nodes), followed through Dagster Pipes (resources.serving.azureml_batch.run_command_on_azureml),
its merged model downloaded from the job's `model` output.

The base model is the registered Azure ML model when the model source is one (`azureml:<name>:<version>`, mounted),
otherwise its local folder, which the SDK uploads to the workspace datastore (once per content: uploads are
deduplicated by hash). The train and eval JSONL files are uploaded the same way. Inside the job Azure ML sets
MLFLOW_TRACKING_URI to the workspace's tracking server; the environment (`waldinger-training`) is the project's
training image with waldinger-runtime[azureml] installed (azureml-mlflow resolves that URI). No code is uploaded,
for the reason given in resources.serving.azureml_batch.
"""

import os
import shutil
from pathlib import Path

BASE_MODEL_INPUT = "base_model"
TRAIN_INPUT = "train"
EVAL_INPUT = "eval"
MODEL_OUTPUT = "model"
TRAINING_JOB_MODULE = "waldinger_runtime.training.job"


class AzureMLTrainingError(RuntimeError):
    """The training job's output cannot be fetched; the message names the job."""


def training_command(
    inputs,
    *,
    compute: str,
    environment: str,
    arguments: list[str],
    display_name: str,
    experiment_name: str,
    tags: dict[str, str],
):
    import shlex

    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.constants import AssetTypes

    for path in (inputs.train_file, inputs.eval_file):
        if not Path(path).is_file():
            raise FileNotFoundError(f"Training data file {path} does not exist; write the split's JSONL there first.")
    if inputs.base_model_uri:
        base = Input(type=AssetTypes.CUSTOM_MODEL, path=inputs.base_model_uri)
    elif inputs.base_model_dir is not None:
        base = Input(type=AssetTypes.URI_FOLDER, path=str(inputs.base_model_dir))
    else:
        raise ValueError("the training job needs the base model's Azure ML URI or its local folder")
    return command(
        command=(
            f"python -m {TRAINING_JOB_MODULE}"
            f" --base-model ${{{{inputs.{BASE_MODEL_INPUT}}}}}"
            f" --train ${{{{inputs.{TRAIN_INPUT}}}}}"
            f" --eval ${{{{inputs.{EVAL_INPUT}}}}}"
            f" --output ${{{{outputs.{MODEL_OUTPUT}}}}}"
            " " + " ".join(shlex.quote(argument) for argument in arguments)
        ),
        inputs={
            BASE_MODEL_INPUT: base,
            TRAIN_INPUT: Input(type=AssetTypes.URI_FILE, path=str(inputs.train_file)),
            EVAL_INPUT: Input(type=AssetTypes.URI_FILE, path=str(inputs.eval_file)),
        },
        outputs={MODEL_OUTPUT: Output(type=AssetTypes.URI_FOLDER)},
        environment=environment,
        compute=compute,
        display_name=display_name,
        experiment_name=experiment_name,
        tags=dict(tags),
    )


def download_model_output(ml_client, job_name: str, output_dir: Path, download_dir: Path) -> None:
    """Moves the job's `model` output folder to `output_dir` once it is completely downloaded."""
    staging = download_dir / job_name
    shutil.rmtree(staging, ignore_errors=True)
    try:
        ml_client.jobs.download(job_name, download_path=str(staging), output_name=MODEL_OUTPUT)
        downloaded = staging / "named-outputs" / MODEL_OUTPUT
        if not (downloaded / "config.json").is_file():
            found = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            raise AzureMLTrainingError(
                f"Azure ML training job {job_name} completed but its {MODEL_OUTPUT!r} output holds no model "
                f"(downloaded: {', '.join(found[:10]) or 'nothing'}); see the job's logs in Azure ML studio."
            )
        shutil.rmtree(output_dir, ignore_errors=True)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        partial = output_dir.with_name(f".{output_dir.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.move(downloaded, partial)
        os.replace(partial, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_training_on_azureml(
    context,
    *,
    ml_client,
    blob_service_client,
    pipes_container: str,
    command,
    output_dir: Path,
    download_dir: Path,
    poll_interval_seconds: float = 5,
):
    """Submits the training command, follows it through Pipes until it ends, and moves its merged model to
    `output_dir`. Returns the Pipes invocation and the job's name; a failed job raises AzureMLBatchError naming
    the job and leaves `output_dir` alone."""
    from resources.serving.azureml_batch import run_command_on_azureml

    invocation, job_name = run_command_on_azureml(
        context,
        ml_client=ml_client,
        blob_service_client=blob_service_client,
        pipes_container=pipes_container,
        command=command,
        poll_interval_seconds=poll_interval_seconds,
        what="training job",
    )
    download_model_output(ml_client, job_name, Path(output_dir), Path(download_dir))
    context.log.info(f"Azure ML training job {job_name} completed; the merged model is in {output_dir}.")
    return invocation, job_name
