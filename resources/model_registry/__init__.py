"""The model registry resource: the embedded on-disk registry locally, Azure ML Model Registry in prod. Both
offer the same operations with the same semantics (see resources.model_registry.embedded): list_versions, get,
register, record_evaluation (a version's metrics, read back as ModelVersion.metrics), local_path, production,
promote, promotions, rollback, archive, restore. Neither judges metrics: the evaluation gate
(waldinger_assets.model.gate) does, in promotion, before it calls promote."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from resources import environment
from resources.model_registry.azure import AzureMLModelRegistry
from resources.model_registry.embedded import EmbeddedModelRegistry


class ModelRegistryResource(ConfigurableResource):
    model_name: str = Field(description="Registered model name.")

    def registry(self):
        raise NotImplementedError


class EmbeddedModelRegistryResource(ModelRegistryResource):
    root: str = Field(description="Folder of the embedded registry.")

    def registry(self):
        return EmbeddedModelRegistry(Path(self.root))


class AzureMLModelRegistryResource(ModelRegistryResource):
    subscription_id: str
    resource_group: str
    workspace: str
    download_dir: str = Field(description="Where registered versions are downloaded to be verified.")

    def registry(self):
        return AzureMLModelRegistry.connect(
            subscription_id=self.subscription_id,
            resource_group=self.resource_group,
            workspace=self.workspace,
            download_dir=Path(self.download_dir),
        )


def model_registry_resource() -> ModelRegistryResource:
    if environment.current_environment() is environment.Environment.PROD:
        environment.require_azure_ml_settings()
        return AzureMLModelRegistryResource(
            model_name=environment.model_name(),
            subscription_id=EnvVar("AZURE_SUBSCRIPTION_ID"),
            resource_group=EnvVar("AZURE_RESOURCE_GROUP"),
            workspace=EnvVar("AZUREML_WORKSPACE"),
            download_dir=str(environment.data_dir() / "models" / "downloads"),
        )
    return EmbeddedModelRegistryResource(
        model_name=environment.model_name(), root=str(environment.data_dir() / "registry")
    )
