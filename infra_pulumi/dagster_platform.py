"""Dagster on Azure: a Postgres flexible server for the Dagster instance (runs, event log, schedules), the
webserver and the daemon as Container Apps, and what every run needs when the daemon launches it as a Container
Apps job (dagster-azure's AcaRunLauncher, configured by waldinger_assets/platform/dagster.yaml in the image):
an identity allowed to create jobs in this resource group, and Azure Files shares for the IO manager's storage
and the schema history, mounted at the same paths in the apps and in every run.

Secrets reach the apps as Key Vault references (the Postgres URL, the Snowflake key, the webhook URL): the
apps' definitions hold only the secret's URL and the identity that reads it. The stores (database, shares, step-log
container) are built by infra_pulumi/dagster_storage.py, as children of this component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi import roles
from infra_pulumi.batch_compute import BatchCompute
from infra_pulumi.building_blocks import user_assigned_identity
from infra_pulumi.config import StackSecrets, StackSettings
from infra_pulumi.dagster_storage import SHARES, instance_database, io_manager_storage, run_files
from infra_pulumi.ml_platform import MlPlatform
from infra_pulumi.pipeline_secrets import DAGSTER_POSTGRES_URL_SECRET, PipelineSecrets
from infra_pulumi.realtime_serving import CONSUMPTION_PROFILE, RealtimeServing

MODEL_SOURCE_VARIABLES = ("WALDINGER_MODEL_AZUREML_URI", "WALDINGER_MODEL_HF_ID")
WEBSERVER_PORT = 3000
DAGSTER_REPOSITORY = "waldinger-dagster"
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


@dataclass(frozen=True)
class _AppParts:
    """What the webserver and the daemon apps share."""

    image: pulumi.Output[str]
    env: list[dict[str, Any]]
    key_vault_refs: list[dict[str, Any]]
    registries: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    app_arguments: dict[str, Any]  # ContainerApp arguments both apps take unchanged

    def container(self, container_name: str, command: list[str]) -> dict[str, Any]:
        return {
            "name": container_name,
            "image": self.image,
            "command": command,
            "resources": {"cpu": 1.0, "memory": "2Gi"},
            "env": self.env,
            "volume_mounts": [
                {"volume_name": storage_name, "mount_path": mount_path}
                for storage_name, (_, mount_path, _) in SHARES.items()
            ],
        }


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
        rg_name = resource_group.name

        self.identity = user_assigned_identity(f"{name}-identity", settings, rg_name, self)
        self._grants = roles.Grants(name, self.identity.principal_id, ml.subscription_id, self)
        self._role_assignments = self._identity_grants(name, resource_group, ml, serving, batch)
        self.postgres = instance_database(name, settings, secrets, rg_name, ml.key_vault.name, parent=self)
        run_storage = run_files(name, settings, rg_name, serving.environment.name, parent=self)
        self.files_account = run_storage.account
        self._role_assignments.append(
            self._grants("compute-logs-writer", roles.STORAGE_BLOB_DATA_CONTRIBUTOR, run_storage.compute_logs.id)
        )
        self.io_storage = io_manager_storage(name, settings, rg_name, parent=self)
        self._role_assignments.append(self._io_manager_grant(name, ml, settings.ci_principal_id))

        image = pulumi.Output.concat(ml.registry_login_server, f"/{DAGSTER_REPOSITORY}:{settings.dagster_image_tag}")
        webserver_name = f"{settings.project[:12]}-{settings.environment}-dagster"
        self.url = pulumi.Output.concat("https://", webserver_name, ".", serving.environment.default_domain)
        self.settings = self._instance_settings(pipeline_settings, settings, ml, serving)
        apps = self._app_parts(settings, rg_name, image, ml, serving, pipeline_secrets)
        self.webserver = self._webserver_app(name, webserver_name, settings, apps)
        self.daemon = self._daemon_app(name, settings, apps)
        self.register_outputs({"url": self.url, "postgresHost": self.postgres.fully_qualified_domain_name})

    def _identity_grants(
        self,
        name: str,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
        serving: RealtimeServing,
        batch: BatchCompute,
    ) -> list[azure_native.authorization.RoleAssignment]:
        """The Dagster identity's roles outside this component (the storage it declares adds its own grants)."""
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
        return [
            # Register model versions and submit the batch's command jobs.
            grant("ml-data-scientist", roles.AZUREML_DATA_SCIENTIST, ml.workspace.id),
            grant("pipes-writer", roles.STORAGE_BLOB_DATA_CONTRIBUTOR, batch.pipes_container.id),
            grant("secrets-user", roles.KEY_VAULT_SECRETS_USER, ml.key_vault.id),
            grant("acr-pull", roles.ACR_PULL, ml.registry.id),
            grant("run-launcher", run_launcher.name, resource_group.id),
            grant("serving-deployer", serving_deployer.name, serving.app.id),
        ]

    def _io_manager_grant(
        self, name: str, ml: MlPlatform, ci_principal_id: str | None
    ) -> azure_native.authorization.RoleAssignment:
        """Who reads and writes asset values in the IO manager's file system: the Dagster identity, which is
        also the identity of every run the daemon launches (WALDINGER_RUN_IDENTITY_ID, AZURE_CLIENT_ID), and
        CI's Azure login (`ciPrincipalId`), so a value CI materializes is the value a daemon run loads. Returns
        the Dagster identity's grant, which the apps wait for."""
        scope = self.io_storage.filesystem.id
        if ci_principal_id:
            roles.grant(
                f"{name}-ci-io-manager",
                role=roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
                subscription_id=ml.subscription_id,
                principal_id=ci_principal_id,
                scope=scope,
                parent=self,
            )
        return self._grants("io-manager", roles.STORAGE_BLOB_DATA_CONTRIBUTOR, scope)

    def _instance_settings(
        self,
        pipeline_settings: Mapping[str, pulumi.Input[str]],
        settings: StackSettings,
        ml: MlPlatform,
        serving: RealtimeServing,
    ) -> dict[str, pulumi.Input[str]]:
        """The pipeline's settings plus the instance's own: every one is a stack output (stack_outputs.py)."""
        return {
            **pipeline_settings,
            "WALDINGER_DAGSTER_URL": self.url,
            "AZURE_LOCATION": settings.location,
            "WALDINGER_ACA_ENVIRONMENT_ID": serving.environment.id,
            "WALDINGER_RUN_IDENTITY_ID": self.identity.id,
            "WALDINGER_KEY_VAULT_URL": ml.key_vault_uri,
            "WALDINGER_COMPUTE_LOGS_STORAGE_ACCOUNT": self.files_account.name,
            "WALDINGER_IO_ADLS2_ACCOUNT": self.io_storage.account.name,
            "WALDINGER_IO_ADLS2_CONTAINER": self.io_storage.filesystem.name,
        }

    def _app_parts(
        self,
        settings: StackSettings,
        rg_name: pulumi.Input[str],
        image: pulumi.Output[str],
        ml: MlPlatform,
        serving: RealtimeServing,
        pipeline_secrets: PipelineSecrets,
    ) -> _AppParts:
        """What the webserver and the daemon share: image, environment, Key Vault references, mounts."""
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
        return _AppParts(
            image=image,
            env=env,
            key_vault_refs=[
                {
                    "name": secret,
                    "key_vault_url": pulumi.Output.concat(ml.key_vault_uri, "secrets/", secret),
                    "identity": self.identity.id,
                }
                for secret in secret_variables
            ],
            registries=[{"server": ml.registry_login_server, "identity": self.identity.id}],
            volumes=[
                {"name": storage_name, "storage_type": "AzureFile", "storage_name": storage_name}
                for storage_name in SHARES
            ],
            app_arguments={
                "resource_group_name": rg_name,
                "location": settings.location,
                "managed_environment_id": serving.environment.id,
                "workload_profile_name": CONSUMPTION_PROFILE["name"],
                "identity": {"type": "UserAssigned", "user_assigned_identities": [self.identity.id]},
                "tags": settings.tags,
            },
        )

    def _webserver_app(
        self, name: str, webserver_name: str, settings: StackSettings, apps: _AppParts
    ) -> azure_native.app.ContainerApp:
        """The webserver: scales to zero, HTTPS ingress open only to `dagsterAllowedIps`."""
        command = ["dagster-webserver", "-h", "0.0.0.0", "-p", str(WEBSERVER_PORT), "-w", "workspace.yaml"]
        return azure_native.app.ContainerApp(
            f"{name}-webserver",
            container_app_name=webserver_name,
            configuration={
                "active_revisions_mode": "Single",
                "registries": apps.registries,
                "secrets": apps.key_vault_refs,
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
                "containers": [apps.container("webserver", command)],
                "volumes": apps.volumes,
                "scale": {
                    "min_replicas": 0,
                    "max_replicas": 1,
                    "rules": [{"name": "http", "http": {"metadata": {"concurrentRequests": "50"}}}],
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._role_assignments),
            **apps.app_arguments,
        )

    def _daemon_app(self, name: str, settings: StackSettings, apps: _AppParts) -> azure_native.app.ContainerApp:
        """The daemon: exactly one replica (sensors, schedules, the run queue and run monitoring are not shared),
        no ingress."""
        return azure_native.app.ContainerApp(
            f"{name}-daemon",
            container_app_name=f"{settings.project[:12]}-{settings.environment}-daemon",
            configuration={
                "active_revisions_mode": "Single",
                "registries": apps.registries,
                "secrets": apps.key_vault_refs,
            },
            template={
                "containers": [apps.container("daemon", ["dagster-daemon", "run", "-w", "workspace.yaml"])],
                "volumes": apps.volumes,
                "scale": {"min_replicas": 1, "max_replicas": 1},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._role_assignments),
            **apps.app_arguments,
        )
