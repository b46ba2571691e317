"""Batch compute: the Azure ML compute cluster the daily batch runs on (min 0 nodes, a max bound from config and
an idle scale-down time, so it costs nothing between batches and can never grow past the bound), the Azure ML
environment of the serving image (the batch runs the same image as the real-time endpoint), and the Blob
Storage container Dagster Pipes talks through."""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi import roles
from infra_pulumi.building_blocks import private_storage_account, scale_to_zero_cluster, user_assigned_identity
from infra_pulumi.config import StackSettings
from infra_pulumi.ml_platform import MlPlatform

COMPUTE_NAME = "waldinger-batch"
PIPES_CONTAINER = "dagster-pipes"
SERVING_ENVIRONMENT = "waldinger-serving"
SERVING_REPOSITORY = "waldinger-serving"


class BatchCompute(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("waldinger:batch:BatchCompute", name, {}, opts)
        self.identity = user_assigned_identity(f"{name}-identity", settings, resource_group.name, self)
        # Pipes authenticates with managed identities only; no account key is ever handed out.
        self.pipes_storage_account = private_storage_account(
            f"{name}pipes", settings, resource_group.name, self, shared_key_access=False
        )
        self.pipes_container = azure_native.storage.BlobContainer(
            f"{name}-pipes-container",
            resource_group_name=resource_group.name,
            account_name=self.pipes_storage_account.name,
            container_name=PIPES_CONTAINER,
            public_access="None",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cluster = self._cluster(name, settings, resource_group, ml)
        self.serving_image = pulumi.Output.concat(
            ml.registry_login_server, f"/{SERVING_REPOSITORY}:{settings.serving_image_tag}"
        )
        self.environment_version = self._serving_environment(name, settings, resource_group, ml)
        self.environment = f"{SERVING_ENVIRONMENT}:{settings.serving_image_tag}"
        grants = roles.Grants(name, self.identity.principal_id, ml.subscription_id, self)
        grants("pipes-writer", roles.STORAGE_BLOB_DATA_CONTRIBUTOR, self.pipes_container.id)
        ml.grant_model_read(grants)
        self.compute_name = self.cluster.name
        self.pipes_account_url = self.pipes_storage_account.primary_endpoints.apply(lambda endpoints: endpoints.blob)
        self.register_outputs(
            {
                "computeName": self.compute_name,
                "pipesAccountUrl": self.pipes_account_url,
                "environment": self.environment,
            }
        )

    def _cluster(
        self,
        name: str,
        settings: StackSettings,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
    ) -> azure_native.machinelearningservices.Compute:
        """The AmlCompute cluster: min 0 nodes, max `batchMaxNodes`, idle scale-down, no public SSH."""
        return scale_to_zero_cluster(
            f"{name}-cluster",
            settings,
            resource_group_name=resource_group.name,
            workspace_name=ml.workspace.name,
            compute_name=COMPUTE_NAME,
            identity_id=self.identity.id,
            vm_size=settings.batch_vm_size,
            vm_priority=settings.batch_vm_priority,
            max_nodes=settings.batch_max_nodes,
            idle_minutes=settings.batch_idle_minutes,
            description="Daily batch completions (scales to zero between batches).",
            parent=self,
        )

    def _serving_environment(
        self,
        name: str,
        settings: StackSettings,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
    ) -> azure_native.machinelearningservices.EnvironmentVersion:
        """The Azure ML environment of the serving image (`self.serving_image`), versioned by its tag."""
        return azure_native.machinelearningservices.EnvironmentVersion(
            f"{name}-serving-environment",
            resource_group_name=resource_group.name,
            workspace_name=ml.workspace.name,
            name=SERVING_ENVIRONMENT,
            version=settings.serving_image_tag,
            properties={
                "image": self.serving_image,
                "os_type": "Linux",
                "description": "The serving image (vLLM + this project): the batch job runs what the endpoint runs.",
                "tags": settings.tags,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
