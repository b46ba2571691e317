"""Resources every component declares the same way: a private storage account and a user-assigned identity."""

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
