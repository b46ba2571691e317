"""The Dagster instance's stores, declared inside the `DagsterOnAzure` component (`parent`): the Postgres
database (runs, event log, schedules) with its URL in Key Vault; the runs' files: Azure Files shares that the
apps and every run mount at the same paths, and the blob container of the step logs; and the ADLS Gen2
filesystem of the IO manager, where every run (daemon-launched or CI) stores and loads asset values."""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi.building_blocks import private_storage_account
from infra_pulumi.config import StackSecrets, StackSettings
from infra_pulumi.pipeline_secrets import DAGSTER_POSTGRES_URL_SECRET, vault_secret

DATABASE = "dagster"
COMPUTE_LOGS_CONTAINER = "compute-logs"  # as in waldinger_assets/platform/dagster.yaml
IO_FILESYSTEM = "dagster-io"  # the ADLS2 IO manager's file system (WALDINGER_IO_ADLS2_CONTAINER)
# Environment storage name -> (Azure Files share, mount path, the variable that points the code at it).
SHARES = {
    "schema-history": ("schema-history", "/mnt/waldinger/schema-history", "WALDINGER_SCHEMA_HISTORY_DIR"),
    "dagster-storage": ("dagster-storage", "/mnt/waldinger/storage", "WALDINGER_STORAGE_DIR"),
}


def postgres_url(login: str, password: str, host: str) -> str:
    """The URL dagster-postgres reads (DAGSTER_POSTGRES_URL); TLS is required by the server."""
    return (
        f"postgresql://{urllib.parse.quote(login, safe='')}:{urllib.parse.quote(password, safe='')}"
        f"@{host}:5432/{DATABASE}?sslmode=require"
    )


def postgres_tier(sku: str) -> str:
    if sku.startswith("Standard_B"):
        return "Burstable"
    if sku.startswith("Standard_E"):
        return "MemoryOptimized"
    return "GeneralPurpose"


def instance_database(
    name: str,
    settings: StackSettings,
    secrets: StackSecrets,
    rg_name: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    parent: pulumi.Resource,
) -> azure_native.dbforpostgresql.Server:
    """The instance's Postgres server and database, its firewall rules, and its URL as a Key Vault secret."""
    child = pulumi.ResourceOptions(parent=parent)
    server = azure_native.dbforpostgresql.Server(
        f"{name}-postgres",
        resource_group_name=rg_name,
        location=settings.location,
        version="16",
        sku={"name": settings.postgres_sku, "tier": postgres_tier(settings.postgres_sku)},
        storage={"storage_size_gb": settings.postgres_storage_gb, "auto_grow": "Enabled"},
        backup={"backup_retention_days": 7, "geo_redundant_backup": "Disabled"},
        high_availability={"mode": "Disabled"},
        auth_config={"password_auth": "Enabled", "active_directory_auth": "Disabled"},
        network={"public_network_access": "Enabled"},
        administrator_login=settings.postgres_admin_login,
        administrator_login_password=secrets.postgres_admin_password,
        tags=settings.tags,
        opts=child,
    )
    azure_native.dbforpostgresql.Database(
        f"{name}-database",
        resource_group_name=rg_name,
        server_name=server.name,
        database_name=DATABASE,
        charset="UTF8",
        collation="en_US.utf8",
        opts=child,
    )
    _firewall_rules(name, settings, rg_name, server, parent)
    url = pulumi.Output.all(
        settings.postgres_admin_login, secrets.postgres_admin_password, server.fully_qualified_domain_name
    ).apply(lambda values: postgres_url(*values))
    vault_secret(
        f"{name}-postgres-url",
        secret_name=DAGSTER_POSTGRES_URL_SECRET,
        value=url,
        vault_name=vault_name,
        resource_group_name=rg_name,
        tags=settings.tags,
        parent=parent,
    )
    return server


def _firewall_rules(
    name: str,
    settings: StackSettings,
    rg_name: pulumi.Input[str],
    server: azure_native.dbforpostgresql.Server,
    parent: pulumi.Resource,
) -> list[azure_native.dbforpostgresql.FirewallRule]:
    # Consumption Container Apps have no fixed outbound address; 0.0.0.0 is Azure's rule for "connections
    # from inside Azure". The server takes TLS and password logins only.
    child = pulumi.ResourceOptions(parent=parent)
    rules = [
        azure_native.dbforpostgresql.FirewallRule(
            f"{name}-postgres-azure",
            resource_group_name=rg_name,
            server_name=server.name,
            firewall_rule_name="allow-azure-services",
            start_ip_address="0.0.0.0",
            end_ip_address="0.0.0.0",
            opts=child,
        )
    ]
    for index, cidr in enumerate(settings.postgres_allowed_ips):
        network = ipaddress.ip_network(cidr)
        rules.append(
            azure_native.dbforpostgresql.FirewallRule(
                f"{name}-postgres-allowed-{index}",
                resource_group_name=rg_name,
                server_name=server.name,
                firewall_rule_name=f"allowed-{index}",
                start_ip_address=str(network[0]),
                end_ip_address=str(network[-1]),
                opts=child,
            )
        )
    return rules


@dataclass(frozen=True)
class RunFiles:
    """The storage account of the runs' files and its step-log container (the shares are mounted by name)."""

    account: azure_native.storage.StorageAccount
    compute_logs: azure_native.storage.BlobContainer


def run_files(
    name: str,
    settings: StackSettings,
    rg_name: pulumi.Input[str],
    environment_name: pulumi.Input[str],
    parent: pulumi.Resource,
) -> RunFiles:
    """The runs' storage account: the step-log container, and each of `SHARES` as an Azure Files share and the
    Container Apps environment storage (`environment_name`) that mounts it."""
    # Container Apps mounts Azure Files with the account key (it has no identity-based mount).
    account = private_storage_account(f"{name}files", settings, rg_name, parent)
    # Run logs (stdout/stderr of each step) go to a blob container the identity alone may write to.
    compute_logs = azure_native.storage.BlobContainer(
        f"{name}-compute-logs",
        resource_group_name=rg_name,
        account_name=account.name,
        container_name=COMPUTE_LOGS_CONTAINER,
        public_access="None",
        opts=pulumi.ResourceOptions(parent=parent),
    )
    account_key = (
        azure_native.storage.list_storage_account_keys_output(resource_group_name=rg_name, account_name=account.name)
        .keys[0]
        .value
    )
    for storage_name, (share_name, _, _) in SHARES.items():
        _mounted_share(name, storage_name, share_name, rg_name, account, account_key, environment_name, parent)
    return RunFiles(account=account, compute_logs=compute_logs)


def _mounted_share(
    name: str,
    storage_name: str,
    share_name: str,
    rg_name: pulumi.Input[str],
    account: azure_native.storage.StorageAccount,
    account_key: pulumi.Output[str],
    environment_name: pulumi.Input[str],
    parent: pulumi.Resource,
) -> azure_native.app.ManagedEnvironmentsStorage:
    """One Azure Files share and the Container Apps environment storage that mounts it."""
    child = pulumi.ResourceOptions(parent=parent)
    share = azure_native.storage.FileShare(
        f"{name}-{share_name}",
        resource_group_name=rg_name,
        account_name=account.name,
        share_name=share_name,
        share_quota=100,
        opts=child,
    )
    return azure_native.app.ManagedEnvironmentsStorage(
        f"{name}-{storage_name}-storage",
        resource_group_name=rg_name,
        environment_name=environment_name,
        storage_name=storage_name,
        properties={
            "azure_file": {
                "account_name": account.name,
                "account_key": pulumi.Output.secret(account_key),
                "share_name": share.name,
                "access_mode": "ReadWrite",
            }
        },
        opts=child,
    )


@dataclass(frozen=True)
class IoManagerStorage:
    """The ADLS Gen2 account and file system of dagster-azure's ADLS2 IO manager."""

    account: azure_native.storage.StorageAccount
    filesystem: azure_native.storage.BlobContainer


def io_manager_storage(
    name: str, settings: StackSettings, rg_name: pulumi.Input[str], parent: pulumi.Resource
) -> IoManagerStorage:
    """An ADLS Gen2 account (hierarchical namespace) and its file system `IO_FILESYSTEM`. Every reader and writer
    signs in with Entra ID (DefaultAzureCredential: a managed identity, or CI's Azure login), so shared keys are
    off and access is the role assignments on the file system alone."""
    account = private_storage_account(
        f"{name}io", settings, rg_name, parent, shared_key_access=False, hierarchical_namespace=True
    )
    filesystem = azure_native.storage.BlobContainer(
        f"{name}-io-filesystem",
        resource_group_name=rg_name,
        account_name=account.name,
        container_name=IO_FILESYSTEM,
        public_access="None",
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return IoManagerStorage(account=account, filesystem=filesystem)
