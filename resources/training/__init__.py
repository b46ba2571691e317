"""Where the training job runs, per environment: a local subprocess on the tiny model, or an Azure ML command
job on the GPU cluster, both through Dagster Pipes and both running the same script
(`python -m waldinger_runtime.training.job`)."""

import sys
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, PipesSubprocessClient
from pydantic import Field

from resources import environment
from resources.background_process import import_root
from resources.training.azureml_job import TRAINING_JOB_MODULE
from resources.training.settings import azure_training_settings, mlflow_tracking_uri, training_settings


@dataclass(frozen=True)
class TrainingInputs:
    base_model_dir: Path | None  # the base model's files on this machine (None when the job reads base_model_uri)
    base_model_uri: str | None  # azureml:<name>:<version> of a registered base model, for Azure ML jobs
    base_model_name: str  # what the base is, for lineage (its source)
    train_file: Path
    eval_file: Path
    dataset_version: str
    code_version: str


@dataclass(frozen=True)
class TrainingRun:
    artifact_dir: Path  # the merged model's files on this machine
    figures: dict  # what the job reported: mlflow_run_id, train_seconds, eval_exact_match, artifact_sha256, ...
    where: str  # the subprocess or the Azure ML job, in words


class TrainingComputeResource(ConfigurableResource):
    method: str = Field(default="full", description="full (every weight) or lora (adapters, merged at the end)")
    steps: int = Field(default=1000)
    batch_size: int = Field(default=32)
    learning_rate: float = Field(default=3e-3)
    mlflow_experiment: str = Field(default="waldinger-fine-tuning")

    def job_arguments(self, inputs: TrainingInputs, run_id: str) -> list[str]:
        return [
            "--dataset-version",
            inputs.dataset_version,
            "--method",
            self.method,
            "--steps",
            str(self.steps),
            "--batch-size",
            str(self.batch_size),
            "--learning-rate",
            repr(self.learning_rate),
            "--experiment",
            self.mlflow_experiment,
            "--run-name",
            f"dagster-{run_id[:8]}",
            "--code-version",
            inputs.code_version,
            "--base-model-name",
            inputs.base_model_name,
            "--dagster-run-id",
            run_id,
        ]

    def train(self, context, inputs: TrainingInputs, output_dir: Path) -> TrainingRun:
        """Runs the training job through Dagster Pipes; the merged artifact ends up in `output_dir`."""
        raise NotImplementedError

    def tracking_location(self) -> str:
        """Where the MLflow runs are, in words (no secret)."""
        raise NotImplementedError


class LocalTrainingResource(TrainingComputeResource):
    tracking_uri: str = Field(description="MLflow tracking URI (a sqlite store under the data directory)")
    threads: int = Field(default=0, description="torch CPU threads for the job (0: torch's default)")

    def train(self, context, inputs: TrainingInputs, output_dir: Path) -> TrainingRun:
        if inputs.base_model_dir is None:
            raise ValueError("the local training job needs the base model's files on this machine")
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            TRAINING_JOB_MODULE,
            "--base-model",
            str(inputs.base_model_dir),
            "--train",
            str(inputs.train_file),
            "--eval",
            str(inputs.eval_file),
            "--output",
            str(output_dir),
            "--threads",
            str(self.threads),
            *self.job_arguments(inputs, context.run.run_id),
        ]
        client = PipesSubprocessClient(env={"PYTHONPATH": import_root(), "MLFLOW_TRACKING_URI": self.tracking_uri})
        invocation = client.run(context=context, command=command)
        return TrainingRun(output_dir, reported_figures(invocation), "local subprocess")

    def tracking_location(self) -> str:
        return self.tracking_uri


class AzureMLTrainingResource(TrainingComputeResource):
    subscription_id: str
    resource_group: str
    workspace: str
    compute: str
    environment: str
    pipes_storage_account_url: str
    pipes_container: str
    download_dir: str

    def train(self, context, inputs: TrainingInputs, output_dir: Path) -> TrainingRun:
        from resources.serving.azureml_batch import connect_blob_service, connect_ml_client
        from resources.training.azureml_job import run_training_on_azureml, training_command

        ml_client = connect_ml_client(self.subscription_id, self.resource_group, self.workspace)
        command = training_command(
            inputs,
            compute=self.compute,
            environment=self.environment,
            arguments=self.job_arguments(inputs, context.run.run_id),
            display_name=f"waldinger training {context.run.run_id[:8]}",
            experiment_name=self.mlflow_experiment,
            tags={"dagster_run_id": context.run.run_id, "training_dataset_version": inputs.dataset_version},
        )
        invocation, job_name = run_training_on_azureml(
            context,
            ml_client=ml_client,
            blob_service_client=connect_blob_service(self.pipes_storage_account_url),
            pipes_container=self.pipes_container,
            command=command,
            output_dir=Path(output_dir),
            download_dir=Path(self.download_dir),
        )
        return TrainingRun(Path(output_dir), {**reported_figures(invocation), "azureml_job": job_name}, job_name)

    def tracking_location(self) -> str:
        return f"the MLflow tracking of Azure ML workspace {self.workspace}"


def reported_figures(invocation) -> dict:
    """The figures the job reported through Pipes (`job_<name>`), as plain values without the prefix."""
    from resources.serving import reported_figures as serving_figures

    return {key.removeprefix("job_"): value for key, value in serving_figures(invocation).items()}


def training_compute_resource() -> TrainingComputeResource:
    settings = training_settings()
    hyperparameters = {
        "method": settings.method,
        "steps": settings.steps,
        "batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
    }
    if environment.current_environment() is environment.Environment.PROD:
        serving = environment.azure_serving_settings()
        azure = azure_training_settings()
        return AzureMLTrainingResource(
            **hyperparameters,
            subscription_id=EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=EnvVar("AZURE_RESOURCE_GROUP"),
            workspace=EnvVar("AZUREML_WORKSPACE"),
            compute=azure.compute,
            environment=azure.environment,
            pipes_storage_account_url=serving.pipes_storage_account_url,
            pipes_container=serving.pipes_container,
            download_dir=str(environment.data_dir() / "training" / "downloads"),
        )
    return LocalTrainingResource(**hyperparameters, tracking_uri=mlflow_tracking_uri())
