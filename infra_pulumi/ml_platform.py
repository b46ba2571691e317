"""The ML platform: an Azure ML workspace with its storage account, key vault, application insights and container
registry (admin user off: everything pulls with a managed identity), plus the Log Analytics workspace that
application insights and the Container Apps environment write to."""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi import roles
from infra_pulumi.building_blocks import private_storage_account
from infra_pulumi.config import StackSettings


class MlPlatform(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        resource_group: azure_native.resources.ResourceGroup,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("waldinger:ml:MlPlatform", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = settings.tags
        resource_group_name = resource_group.name
        client = azure_native.authorization.get_client_config_output()
        self.subscription_id = client.subscription_id
        self.tenant_id = client.tenant_id

        self.log_analytics = azure_native.operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=resource_group_name,
            location=settings.location,
            sku={"name": "PerGB2018"},
            retention_in_days=30,
            tags=tags,
            opts=child,
        )
        # Azure ML's default datastore reads it with the account key, so shared keys stay on here.
        self.storage_account = private_storage_account(f"{name}store", settings, resource_group_name, self)
        self.key_vault = self._key_vault(name, settings, resource_group_name)
        self.app_insights = self._app_insights(name, settings, resource_group_name)
        self.registry = azure_native.containerregistry.Registry(
            f"{name}acr",
            resource_group_name=resource_group_name,
            location=settings.location,
            sku={"name": "Standard"},
            admin_user_enabled=False,
            tags=tags,
            opts=child,
        )
        self.workspace = self._workspace(name, settings, resource_group_name)
        # Shared by the real-time app and the batch and training clusters: each downloads registered model versions.
        self.model_reader_role = roles.custom_role(
            f"{name}-model-reader",
            role_name=pulumi.Output.concat("Waldinger model reader (", resource_group_name, ")"),
            description="Read registered model versions of the Waldinger Azure ML workspace and download them.",
            actions=roles.MODEL_READER_ACTIONS,
            scope=resource_group.id,
            parent=self,
        )
        self.registry_login_server = self.registry.login_server
        self.key_vault_uri = self.key_vault.properties.apply(lambda properties: properties.vault_uri)
        self.register_outputs(
            {
                "workspaceName": self.workspace.name,
                "registryLoginServer": self.registry_login_server,
                "keyVaultUri": self.key_vault_uri,
            }
        )

    def _key_vault(
        self, name: str, settings: StackSettings, resource_group_name: pulumi.Input[str]
    ) -> azure_native.keyvault.Vault:
        """The key vault: Azure RBAC, soft delete, purge protection in prod."""
        return azure_native.keyvault.Vault(
            f"{name}-kv",
            resource_group_name=resource_group_name,
            location=settings.location,
            properties={
                "tenant_id": self.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                # Access is Azure RBAC (Key Vault Secrets User per identity), not vault access policies.
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 30,
                # Purge protection cannot be turned off again; only prod keeps deleted secrets unpurgeable.
                "enable_purge_protection": True if settings.environment == "prod" else None,
            },
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _app_insights(
        self, name: str, settings: StackSettings, resource_group_name: pulumi.Input[str]
    ) -> azure_native.applicationinsights.Component:
        """Application insights on the Log Analytics workspace (`self.log_analytics`)."""
        return azure_native.applicationinsights.Component(
            f"{name}-insights",
            resource_group_name=resource_group_name,
            location=settings.location,
            kind="web",
            application_type="web",
            workspace_resource_id=self.log_analytics.id,
            ingestion_mode="LogAnalytics",
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _workspace(
        self, name: str, settings: StackSettings, resource_group_name: pulumi.Input[str]
    ) -> azure_native.machinelearningservices.Workspace:
        """The Azure ML workspace on this component's storage account, key vault, insights and registry."""
        return azure_native.machinelearningservices.Workspace(
            f"{name}-ws",
            resource_group_name=resource_group_name,
            location=settings.location,
            identity={"type": "SystemAssigned"},
            sku={"name": "Basic", "tier": "Basic"},
            storage_account=self.storage_account.id,
            key_vault=self.key_vault.id,
            application_insights=self.app_insights.id,
            container_registry=self.registry.id,
            friendly_name=f"Waldinger {settings.environment}",
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def grant_model_read(self, grants: roles.Grants) -> list[azure_native.authorization.RoleAssignment]:
        """What downloading a registered model version takes (the real-time container, the batch and the training
        clusters): the model reader role on the workspace and read access to the files in its storage account."""
        return [
            grants("model-reader", self.model_reader_role.name, self.workspace.id),
            grants("model-files-reader", roles.STORAGE_BLOB_DATA_READER, self.storage_account.id),
        ]
