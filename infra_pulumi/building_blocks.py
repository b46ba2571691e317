"""Resources every component declares the same way: a private storage account, a user-assigned identity and an
Azure ML compute cluster that scales to zero."""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi.config import StackSettings


def private_storage_account(
    name: str,
    settings: StackSettings,
    resource_group_name: pulumi.Input[str],
    parent: pulumi.Resource,
    *,
    shared_key_access: bool = True,
    hierarchical_namespace: bool = False,
) -> azure_native.storage.StorageAccount:
    """StorageV2, locally redundant, no anonymous blob access, TLS 1.2. `shared_key_access=False` where only
    Entra ID sign-ins use it (no account key can be handed out); `hierarchical_namespace=True` makes it ADLS
    Gen2 (directories and the dfs endpoint, which dagster-azure's ADLS2 IO manager needs)."""
    return azure_native.storage.StorageAccount(
        name,
        resource_group_name=resource_group_name,
        location=settings.location,
        kind="StorageV2",
        sku={"name": "Standard_LRS"},
        allow_blob_public_access=False,
        allow_shared_key_access=None if shared_key_access else False,
        is_hns_enabled=True if hierarchical_namespace else None,
        minimum_tls_version="TLS1_2",
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def user_assigned_identity(
    name: str, settings: StackSettings, resource_group_name: pulumi.Input[str], parent: pulumi.Resource
) -> azure_native.managedidentity.UserAssignedIdentity:
    return azure_native.managedidentity.UserAssignedIdentity(
        name,
        resource_group_name=resource_group_name,
        location=settings.location,
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def idle_duration(minutes: int) -> str:
    """ISO-8601 duration, the format Azure ML takes for nodeIdleTimeBeforeScaleDown."""
    return f"PT{minutes}M"


def scale_to_zero_cluster(
    name: str,
    settings: StackSettings,
    *,
    resource_group_name: pulumi.Input[str],
    workspace_name: pulumi.Input[str],
    compute_name: str,
    identity_id: pulumi.Input[str],
    vm_size: str,
    vm_priority: str,
    max_nodes: int,
    idle_minutes: int,
    description: str,
    parent: pulumi.Resource,
) -> azure_native.machinelearningservices.Compute:
    """An AmlCompute cluster as every cluster of the stack is declared: min 0 nodes (never a setting, so it costs
    nothing between jobs), a max bound, idle scale-down, one user-assigned identity, no local auth and no public
    SSH port. The policy pack's compute-cluster-scales-to-zero rule checks the same on every preview."""
    return azure_native.machinelearningservices.Compute(
        name,
        resource_group_name=resource_group_name,
        workspace_name=workspace_name,
        compute_name=compute_name,
        location=settings.location,
        identity={"type": "UserAssigned", "user_assigned_identities": [identity_id]},
        properties={
            "compute_type": "AmlCompute",
            "description": description,
            "disable_local_auth": True,
            "properties": {
                "vm_size": vm_size,
                "vm_priority": vm_priority,
                "os_type": "Linux",
                "remote_login_port_public_access": "Disabled",
                "scale_settings": {
                    "min_node_count": 0,
                    "max_node_count": max_nodes,
                    "node_idle_time_before_scale_down": idle_duration(idle_minutes),
                },
            },
        },
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
