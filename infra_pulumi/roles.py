"""Role assignments: the built-in Azure roles the stack grants, and one helper so every grant reads the same.

Built-in role ids are fixed GUIDs across all tenants (Azure docs, "Azure built-in roles").
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
AZUREML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"

# What reading a registered model version takes (the real-time container and the clusters download it):
# the version's metadata, and the workspace datastore's credentials to fetch its files.
MODEL_READER_ACTIONS = (
    "Microsoft.MachineLearningServices/workspaces/read",
    "Microsoft.MachineLearningServices/workspaces/models/read",
    "Microsoft.MachineLearningServices/workspaces/models/versions/read",
    "Microsoft.MachineLearningServices/workspaces/datastores/read",
    "Microsoft.MachineLearningServices/workspaces/datastores/listsecrets/action",
)


def role_definition(role_id: pulumi.Input[str], subscription_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The subscription-level id of a role definition (a built-in role's GUID, or a custom role's name)."""
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role_id
    )


def grant(
    name: str,
    *,
    role: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    scope: pulumi.Input[str],
    parent: pulumi.Resource,
) -> azure_native.authorization.RoleAssignment:
    """Grants a managed identity (a service principal) one role (a built-in role's GUID or a custom role's name)
    on one scope."""
    return azure_native.authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_definition(role, subscription_id),
        scope=scope,
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class Grants:
    """The role assignments of one managed identity, named `<prefix>-<suffix>` and parented to its component:
    `grants("acr-pull", ACR_PULL, registry.id)`."""

    prefix: str
    principal_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    parent: pulumi.Resource

    def __call__(
        self, suffix: str, role: pulumi.Input[str], scope: pulumi.Input[str]
    ) -> azure_native.authorization.RoleAssignment:
        return grant(
            f"{self.prefix}-{suffix}",
            role=role,
            subscription_id=self.subscription_id,
            principal_id=self.principal_id,
            scope=scope,
            parent=self.parent,
        )


def custom_role(
    name: str,
    *,
    role_name: pulumi.Input[str],
    description: str,
    actions: tuple[str, ...] | list[str],
    scope: pulumi.Input[str],
    parent: pulumi.Resource,
) -> azure_native.authorization.RoleDefinition:
    """A least-privilege custom role, assignable only inside `scope` (the stack's resource group)."""
    return azure_native.authorization.RoleDefinition(
        name,
        role_name=role_name,
        description=description,
        role_type="CustomRole",
        permissions=[{"actions": list(actions)}],
        assignable_scopes=[scope],
        scope=scope,
        opts=pulumi.ResourceOptions(parent=parent),
    )
