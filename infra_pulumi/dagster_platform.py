"""Dagster on Azure: a Postgres flexible server for the Dagster instance (runs, event log, schedules), the
webserver and the daemon as Container Apps, and what every run needs when the daemon launches it as a Container
Apps job (dagster-azure's AcaRunLauncher, configured by waldinger_assets/platform/dagster.yaml in the image):
an identity allowed to create jobs in this resource group, and Azure Files shares for the IO manager's storage
and the schema history, mounted at the same paths in the apps and in every run.

Secrets reach the apps as Key Vault references (the Postgres URL, the Snowflake key, the webhook URL): the
apps' definitions hold only the secret's URL and the identity that reads it.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi import roles
from infra_pulumi.batch_compute import BatchCompute
from infra_pulumi.building_blocks import private_storage_account, user_assigned_identity
from infra_pulumi.config import StackSecrets, StackSettings
from infra_pulumi.ml_platform import MlPlatform
from infra_pulumi.pipeline_secrets import DAGSTER_POSTGRES_URL_SECRET, PipelineSecrets, vault_secret
from infra_pulumi.realtime_serving import CONSUMPTION_PROFILE, RealtimeServing

DATABASE = "dagster"
COMPUTE_LOGS_CONTAINER = "compute-logs"  # as in waldinger_assets/platform/dagster.yaml
MODEL_SOURCE_VARIABLES = ("WALDINGER_MODEL_AZUREML_URI", "WALDINGER_MODEL_HF_ID")
WEBSERVER_PORT = 3000
DAGSTER_REPOSITORY = "waldinger-dagster"
# Environment storage name -> (Azure Files share, mount path, the variable that points the code at it).
SHARES = {
    "schema-history": ("schema-history", "/mnt/waldinger/schema-history", "WALDINGER_SCHEMA_HISTORY_DIR"),
    "dagster-storage": ("dagster-storage", "/mnt/waldinger/storage", "WALDINGER_STORAGE_DIR"),
}
# What AcaRunLauncher does: create, start, watch and delete one Container Apps job per run, in this
# environment, as the Dagster identity. Scoped to the stack's resource group.
RUN_LAUNCHER_ACTIONS = (
    "Microsoft.App/jobs/read",
    "Microsoft.App/jobs/write",
    "Microsoft.App/jobs/delete",
    "Microsoft.App/jobs/start/action",
    "Microsoft.App/jobs/stop/action",
    "Microsoft.App/jobs/executions/read",
    "Microsoft.App/managedEnvironments/read",
    "Microsoft.App/managedEnvironments/join/action",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
)
# What the realtime_deployment asset does to the serving app (read it, patch its template, list revisions);
# assigned on that app only.
SERVING_DEPLOYER_ACTIONS = (
    "Microsoft.App/containerApps/read",
    "Microsoft.App/containerApps/write",
    "Microsoft.App/containerApps/revisions/read",
)


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


class DagsterOnAzure(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        secrets: StackSecrets,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
        serving: RealtimeServing,
        batch: BatchCompute,
        pipeline_secrets: PipelineSecrets,
        pipeline_settings: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`pipeline_settings`: the environment variables the pipeline's code reads in prod (the stack outputs);
        this component adds the instance's own (Dagster URL, run launcher settings) to them."""
        super().__init__("waldinger:dagster:DagsterOnAzure", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = settings.tags
        rg_name = resource_group.name
        subscription_id = ml.subscription_id

        self.identity = user_assigned_identity(f"{name}-identity", settings, rg_name, self)
        self._grants = roles.Grants(name, self.identity.principal_id, subscription_id, self)
        self._grant_roles(name, resource_group, ml, serving, batch)

        # -- the instance's database -------------------------------------------------------------
        self.postgres = azure_native.dbforpostgresql.Server(
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
            tags=tags,
            opts=child,
        )
        azure_native.dbforpostgresql.Database(
            f"{name}-database",
            resource_group_name=rg_name,
            server_name=self.postgres.name,
            database_name=DATABASE,
            charset="UTF8",
            collation="en_US.utf8",
            opts=child,
        )
        # Consumption Container Apps have no fixed outbound address; 0.0.0.0 is Azure's rule for "connections
        # from inside Azure". The server takes TLS and password logins only.
        azure_native.dbforpostgresql.FirewallRule(
            f"{name}-postgres-azure",
            resource_group_name=rg_name,
            server_name=self.postgres.name,
            firewall_rule_name="allow-azure-services",
            start_ip_address="0.0.0.0",
            end_ip_address="0.0.0.0",
            opts=child,
        )
        for index, cidr in enumerate(settings.postgres_allowed_ips):
            network = ipaddress.ip_network(cidr)
            azure_native.dbforpostgresql.FirewallRule(
                f"{name}-postgres-allowed-{index}",
                resource_group_name=rg_name,
                server_name=self.postgres.name,
                firewall_rule_name=f"allowed-{index}",
                start_ip_address=str(network[0]),
                end_ip_address=str(network[-1]),
                opts=child,
            )
        url = pulumi.Output.all(
            settings.postgres_admin_login, secrets.postgres_admin_password, self.postgres.fully_qualified_domain_name
        ).apply(lambda values: postgres_url(*values))
        vault_secret(
            f"{name}-postgres-url",
            secret_name=DAGSTER_POSTGRES_URL_SECRET,
            value=url,
            vault_name=ml.key_vault.name,
            resource_group_name=rg_name,
            tags=tags,
            parent=self,
        )

        # -- shared file storage for runs -------------------------------------------------------
        # Container Apps mounts Azure Files with the account key (it has no identity-based mount).
        self.files_account = private_storage_account(f"{name}files", settings, rg_name, self)
        # Run logs (stdout/stderr of each step) go to a blob container the identity alone may write to.
        compute_logs = azure_native.storage.BlobContainer(
            f"{name}-compute-logs",
            resource_group_name=rg_name,
            account_name=self.files_account.name,
            container_name=COMPUTE_LOGS_CONTAINER,
            public_access="None",
            opts=child,
        )
        self._role_assignments.append(
            self._grants("compute-logs-writer", roles.STORAGE_BLOB_DATA_CONTRIBUTOR, compute_logs.id)
        )
        account_key = (
            azure_native.storage.list_storage_account_keys_output(
                resource_group_name=rg_name, account_name=self.files_account.name
            )
            .keys[0]
            .value
        )
        for storage_name, (share_name, _, _) in SHARES.items():
            share = azure_native.storage.FileShare(
                f"{name}-{share_name}",
                resource_group_name=rg_name,
                account_name=self.files_account.name,
                share_name=share_name,
                share_quota=100,
                opts=child,
            )
            azure_native.app.ManagedEnvironmentsStorage(
                f"{name}-{storage_name}-storage",
                resource_group_name=rg_name,
                environment_name=serving.environment.name,
                storage_name=storage_name,
                properties={
                    "azure_file": {
                        "account_name": self.files_account.name,
                        "account_key": pulumi.Output.secret(account_key),
                        "share_name": share.name,
                        "access_mode": "ReadWrite",
                    }
                },
                opts=child,
            )

        # -- the apps ---------------------------------------------------------------------------
        image = pulumi.Output.concat(ml.registry_login_server, f"/{DAGSTER_REPOSITORY}:{settings.dagster_image_tag}")
        webserver_name = f"{settings.project[:12]}-{settings.environment}-dagster"
        self.url = pulumi.Output.concat("https://", webserver_name, ".", serving.environment.default_domain)
        self.settings: dict[str, pulumi.Input[str]] = {
            **pipeline_settings,
            "WALDINGER_DAGSTER_URL": self.url,
            "AZURE_LOCATION": settings.location,
            "WALDINGER_ACA_ENVIRONMENT_ID": serving.environment.id,
            "WALDINGER_RUN_IDENTITY_ID": self.identity.id,
            "WALDINGER_KEY_VAULT_URL": ml.key_vault_uri,
            "WALDINGER_COMPUTE_LOGS_STORAGE_ACCOUNT": self.files_account.name,
        }
        inside_container = {
            "WALDINGER_ENV": "prod",
            "AZURE_CLIENT_ID": self.identity.client_id,
            "DAGSTER_CURRENT_IMAGE": image,
            "WALDINGER_DATA_DIR": "/tmp/waldinger",
            # dagster.yaml forwards both model-source variables to every run, so both must exist; the code
            # ignores an empty one.
            **{name: "" for name in MODEL_SOURCE_VARIABLES if name not in self.settings},
            **{variable: mount_path for _, mount_path, variable in SHARES.values()},
        }
        secret_variables = {
            DAGSTER_POSTGRES_URL_SECRET: "DAGSTER_POSTGRES_URL",
            **pipeline_secrets.environment_variables,
        }
        env = [{"name": key, "value": value} for key, value in {**self.settings, **inside_container}.items()]
        env += [{"name": variable, "secret_ref": secret} for secret, variable in secret_variables.items()]
        key_vault_refs = [
            {
                "name": secret,
                "key_vault_url": pulumi.Output.concat(ml.key_vault_uri, "secrets/", secret),
                "identity": self.identity.id,
            }
            for secret in secret_variables
        ]

        def container(container_name: str, command: list[str]) -> dict:
            return {
                "name": container_name,
                "image": image,
                "command": command,
                "resources": {"cpu": 1.0, "memory": "2Gi"},
                "env": env,
                "volume_mounts": [
                    {"volume_name": storage_name, "mount_path": mount_path}
                    for storage_name, (_, mount_path, _) in SHARES.items()
                ],
            }

        volumes = [
            {"name": storage_name, "storage_type": "AzureFile", "storage_name": storage_name} for storage_name in SHARES
        ]
        common = {
            "resource_group_name": rg_name,
            "location": settings.location,
            "managed_environment_id": serving.environment.id,
            "workload_profile_name": CONSUMPTION_PROFILE["name"],
            "identity": {"type": "UserAssigned", "user_assigned_identities": [self.identity.id]},
            "tags": tags,
        }
        registries = [{"server": ml.registry_login_server, "identity": self.identity.id}]
        self.webserver = azure_native.app.ContainerApp(
            f"{name}-webserver",
            container_app_name=webserver_name,
            configuration={
                "active_revisions_mode": "Single",
                "registries": registries,
                "secrets": key_vault_refs,
                "ingress": {
                    "external": True,
                    "target_port": WEBSERVER_PORT,
                    "allow_insecure": False,
                    "traffic": [{"latest_revision": True, "weight": 100}],
                    # The webserver has no login of its own: only the listed ranges reach it.
                    "ip_security_restrictions": [
                        {"name": f"allowed-{index}", "action": "Allow", "ip_address_range": cidr}
                        for index, cidr in enumerate(settings.dagster_allowed_ips)
                    ],
                },
            },
            template={
                "containers": [
                    container(
                        "webserver",
                        ["dagster-webserver", "-h", "0.0.0.0", "-p", str(WEBSERVER_PORT), "-w", "workspace.yaml"],
                    )
                ],
                "volumes": volumes,
                "scale": {
                    "min_replicas": 0,
                    "max_replicas": 1,
                    "rules": [{"name": "http", "http": {"metadata": {"concurrentRequests": "50"}}}],
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._role_assignments),
            **common,
        )
        self.daemon = azure_native.app.ContainerApp(
            f"{name}-daemon",
            container_app_name=f"{settings.project[:12]}-{settings.environment}-daemon",
            configuration={"active_revisions_mode": "Single", "registries": registries, "secrets": key_vault_refs},
            template={
                "containers": [container("daemon", ["dagster-daemon", "run", "-w", "workspace.yaml"])],
                "volumes": volumes,
                # Exactly one daemon: sensors, schedules, the run queue and run monitoring are not shared.
                "scale": {"min_replicas": 1, "max_replicas": 1},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._role_assignments),
            **common,
        )
        self.register_outputs({"url": self.url, "postgresHost": self.postgres.fully_qualified_domain_name})

    def _grant_roles(
        self,
        name: str,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
        serving: RealtimeServing,
        batch: BatchCompute,
    ) -> None:
        grant = self._grants

        run_launcher = roles.custom_role(
            f"{name}-run-launcher-role",
            role_name=pulumi.Output.concat("Waldinger Dagster run launcher (", resource_group.name, ")"),
            description="Create, start, watch and delete the Container Apps jobs that run Dagster runs.",
            actions=RUN_LAUNCHER_ACTIONS,
            scope=resource_group.id,
            parent=self,
        )
        serving_deployer = roles.custom_role(
            f"{name}-serving-deployer-role",
            role_name=pulumi.Output.concat("Waldinger serving deployer (", resource_group.name, ")"),
            description="Point the real-time serving app at a registered model version (new revision).",
            actions=SERVING_DEPLOYER_ACTIONS,
            scope=resource_group.id,
            parent=self,
        )
        self._role_assignments = [
            # Register model versions and submit the batch's command jobs.
            grant("ml-data-scientist", roles.AZUREML_DATA_SCIENTIST, ml.workspace.id),
            grant("pipes-writer", roles.STORAGE_BLOB_DATA_CONTRIBUTOR, batch.pipes_container.id),
            grant("secrets-user", roles.KEY_VAULT_SECRETS_USER, ml.key_vault.id),
            grant("acr-pull", roles.ACR_PULL, ml.registry.id),
            grant("run-launcher", run_launcher.name, resource_group.id),
            grant("serving-deployer", serving_deployer.name, serving.app.id),
        ]
