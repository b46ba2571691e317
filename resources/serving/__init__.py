"""Where the two deployments run, per environment: the real-time endpoint (a local server process, or the Azure
Container Apps app running vLLM) and the batch compute (a local subprocess, or the Azure ML cluster), both
through Dagster Pipes for batch. The same registered artifact goes to both (resources.serving.artifacts).
"""

from __future__ import annotations

import sys
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, PipesSubprocessClient
from pydantic import Field

from resources import environment
from resources.background_process import get_json, import_root
from resources.serving import local_endpoint
from resources.serving.artifacts import RealtimeDeployment, ServedArtifact, ServedVersion
from resources.serving.azureml_batch import (
    batch_command,
    connect_blob_service,
    connect_ml_client,
    run_batch_on_azureml,
)
from resources.serving.container_apps import connect, deploy_version, served_version


class RealtimeDeploymentResource(ConfigurableResource):
    api_key: str | None = Field(
        default=None,
        description="Bearer key the endpoint's OpenAI API requires (an EnvVar of WALDINGER_SERVING_API_KEY; none "
        "for an open local endpoint).",
    )

    def deploy(self, artifact: ServedArtifact) -> RealtimeDeployment:
        """Makes the endpoint serve `artifact`."""
        raise NotImplementedError

    def served(self) -> ServedVersion:
        """What the endpoint serves right now."""
        raise NotImplementedError

    def needs_local_files(self) -> bool:
        return False


class LocalRealtimeEndpointResource(RealtimeDeploymentResource):
    data_dir: str = Field(description="The project's data directory (the endpoint's state lives below it).")
    port: int | None = Field(default=None, description="A fixed port; a free one when unset.")
    engine: str = Field(default="auto", description="auto, transformers or vllm")

    def deploy(self, artifact: ServedArtifact) -> RealtimeDeployment:
        status, restarted = local_endpoint.start(
            Path(self.data_dir), artifact, port=self.port, engine=self.engine, api_key=self.api_key
        )
        return RealtimeDeployment(
            url=status.url,
            model=artifact.model,
            version=artifact.version,
            sha256=artifact.sha256,
            updated=restarted,
            target="local server process",
        )

    def served(self) -> ServedVersion:
        status = local_endpoint.status(Path(self.data_dir))
        if not status.running:
            return ServedVersion()
        health = get_json(status.url.removesuffix("/v1") + "/health", timeout=10) or {}
        return ServedVersion(
            model=health.get("model"), version=health.get("version"), sha256=status.sha256, url=status.url
        )

    def needs_local_files(self) -> bool:
        return True


class ContainerAppsRealtimeResource(RealtimeDeploymentResource):
    subscription_id: str
    resource_group: str
    app_name: str
    container_name: str = "vllm"

    def _client(self):
        return connect(self.subscription_id)

    def deploy(self, artifact: ServedArtifact) -> RealtimeDeployment:
        deployment = deploy_version(
            self._client(),
            self.resource_group,
            self.app_name,
            model_name=artifact.model,
            version=artifact.version,
            model_uri=artifact.model_uri,
            sha256=artifact.sha256,
            container_name=self.container_name,
        )
        return RealtimeDeployment(
            url=deployment.url,
            model=deployment.model,
            version=deployment.version,
            sha256=deployment.sha256,
            updated=deployment.updated,
            target=f"Azure Container App {self.app_name} (revision {deployment.revision})",
        )

    def served(self) -> ServedVersion:
        served = served_version(self._client(), self.resource_group, self.app_name, self.container_name)
        return ServedVersion(
            model=served["model"], version=served["version"], sha256=served["sha256"], url=served["url"]
        )


class BatchComputeResource(ConfigurableResource):
    batch_size: int = Field(default=32, description="Prompts per engine call.")

    def run_job(
        self, context, *, artifact: ServedArtifact, requests_file: Path, output_file: Path, fingerprint: str
    ) -> dict:
        """Runs the batch job script through Dagster Pipes; returns the figures it reported."""
        raise NotImplementedError

    def needs_local_files(self) -> bool:
        return False


class LocalBatchComputeResource(BatchComputeResource):
    engine: str = Field(default="auto", description="auto, transformers or vllm")

    def run_job(
        self, context, *, artifact: ServedArtifact, requests_file: Path, output_file: Path, fingerprint: str
    ) -> dict:
        command = [
            sys.executable,
            "-m",
            "waldinger_runtime.batch_job",
            "--model",
            str(artifact.path),
            "--input",
            str(requests_file),
            "--output",
            str(output_file),
            "--batch-size",
            str(self.batch_size),
            "--engine",
            self.engine,
            "--fingerprint",
            fingerprint,
        ]
        client = PipesSubprocessClient(env={"PYTHONPATH": import_root()})
        invocation = client.run(context=context, command=command)
        return reported_figures(invocation)

    def needs_local_files(self) -> bool:
        return True


class AzureMLBatchComputeResource(BatchComputeResource):
    subscription_id: str
    resource_group: str
    workspace: str
    compute: str
    environment: str
    pipes_storage_account_url: str
    pipes_container: str
    download_dir: str

    def run_job(
        self, context, *, artifact: ServedArtifact, requests_file: Path, output_file: Path, fingerprint: str
    ) -> dict:
        command = batch_command(
            model_uri=artifact.model_uri,
            requests_file=requests_file,
            compute=self.compute,
            environment=self.environment,
            batch_size=self.batch_size,
            fingerprint=fingerprint,
            display_name=f"waldinger batch {context.run.run_id[:8]}",
            tags={"dagster_run_id": context.run.run_id, "model_version": artifact.version},
        )
        invocation, job_name = run_batch_on_azureml(
            context,
            ml_client=connect_ml_client(self.subscription_id, self.resource_group, self.workspace),
            blob_service_client=connect_blob_service(self.pipes_storage_account_url),
            pipes_container=self.pipes_container,
            command=command,
            output_file=output_file,
            download_dir=Path(self.download_dir),
        )
        return {**reported_figures(invocation), "azureml_job": job_name}


def reported_figures(invocation) -> dict:
    """The figures the job reported through Pipes (job_rows, job_completion_tokens, ...), as plain values: the
    asset's materialization metadata, or in an asset check's step the job's custom message."""
    custom = invocation.get_custom_messages()
    if custom:
        return dict(custom[-1])
    reported = invocation.get_materialize_result().metadata or {}
    return {key: getattr(value, "value", value) for key, value in reported.items()}


def realtime_deployment_resource() -> RealtimeDeploymentResource:
    if environment.current_environment() is environment.Environment.PROD:
        settings = environment.azure_serving_settings()
        return ContainerAppsRealtimeResource(
            subscription_id=EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=EnvVar("AZURE_RESOURCE_GROUP"),
            app_name=settings.container_app,
            container_name=settings.container_name,
            api_key=EnvVar(variable) if (variable := environment.serving_api_key_variable()) else None,
        )
    return LocalRealtimeEndpointResource(
        data_dir=str(environment.data_dir()),
        port=environment.requested_serve_port(),
        engine=environment.inference_engine(),
        # Set locally too, the local server requires it like vLLM does, so the smoke test really sends it.
        api_key=EnvVar(variable) if (variable := environment.serving_api_key_variable()) else None,
    )


def batch_compute_resource() -> BatchComputeResource:
    if environment.current_environment() is environment.Environment.PROD:
        settings = environment.azure_serving_settings()
        return AzureMLBatchComputeResource(
            batch_size=environment.batch_size(),
            subscription_id=EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=EnvVar("AZURE_RESOURCE_GROUP"),
            workspace=EnvVar("AZUREML_WORKSPACE"),
            compute=settings.compute,
            environment=settings.environment,
            pipes_storage_account_url=settings.pipes_storage_account_url,
            pipes_container=settings.pipes_container,
            download_dir=str(environment.data_dir() / "batch" / "downloads"),
        )
    return LocalBatchComputeResource(batch_size=environment.batch_size(), engine=environment.inference_engine())
