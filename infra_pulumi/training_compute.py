"""Training compute: the Azure ML GPU cluster the fine-tuning command job (LoRA on Mistral-7B-Instruct) runs on.

Declared like the batch cluster (min 0 nodes, a max bound from config, idle scale-down, its own user-assigned
identity, no public SSH), so it costs nothing between training runs. Its VM size is `trainingVmSize` and its
bound `trainingMaxNodes` (default 1). Nodes are always Dedicated: a low-priority node can be evicted in the
middle of a run, and the hours spent until then are billed all the same.

Dagster Pipes talks to the training job through the same blob container as to the batch job (one
`WALDINGER_PIPES_CONTAINER` for the pipeline), so the cluster's identity may write that container; it may also
read registered model versions (the base model can come from the workspace's registry).
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi import roles
from infra_pulumi.building_blocks import scale_to_zero_cluster, user_assigned_identity
from infra_pulumi.config import StackSettings
from infra_pulumi.ml_platform import MlPlatform

COMPUTE_NAME = "waldinger-training"
VM_PRIORITY = "Dedicated"


class TrainingCompute(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
        pipes_container: azure_native.storage.BlobContainer,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("waldinger:training:TrainingCompute", name, {}, opts)
        self.identity = user_assigned_identity(f"{name}-identity", settings, resource_group.name, self)
        self.cluster = scale_to_zero_cluster(
            f"{name}-cluster",
            settings,
            resource_group_name=resource_group.name,
            workspace_name=ml.workspace.name,
            compute_name=COMPUTE_NAME,
            identity_id=self.identity.id,
            vm_size=settings.training_vm_size,
            vm_priority=VM_PRIORITY,
            max_nodes=settings.training_max_nodes,
            idle_minutes=settings.training_idle_minutes,
            description="LoRA fine-tuning of the pipeline's model (scales to zero between training runs).",
            parent=self,
        )
        grants = roles.Grants(name, self.identity.principal_id, ml.subscription_id, self)
        grants("pipes-writer", roles.STORAGE_BLOB_DATA_CONTRIBUTOR, pipes_container.id)
        ml.grant_model_read(grants)
        self.compute_name = self.cluster.name
        self.register_outputs({"computeName": self.compute_name})
