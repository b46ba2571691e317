"""The whole Pulumi program (infra_pulumi/__main__.py) run once on Pulumi's mocks: no CLI, no cloud. The mocks
answer like Azure Resource Manager where the program reads an output (ids, names, endpoints, the client config)
and record every resource with its inputs (camelCase, as the engine sends them to providers and policy packs)
and its parent."""

from __future__ import annotations

import json
import runpy
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import REPO_ROOT

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
CI_PRINCIPAL = "22222222-2222-2222-2222-222222222222"  # the object id of the materialize workflow's login
# Recognisable secret values: a test asserts they never reach a stack output or an app definition.
SECRET_VALUES = {
    "waldinger:snowflakePrivateKey": "-----BEGIN PRIVATE KEY-----SNOWFLAKE-SECRET-----END PRIVATE KEY-----",
    "waldinger:postgresAdminPassword": "pg-secret-p@ss/word",
    "waldinger:alertWebhookUrl": "https://example.webhook.office.com/webhook-secret-token",
    "waldinger:servingApiKey": "sk-serving-secret-key-0123456789",
}
PROD_CONFIG = {
    "waldinger:location": "westeurope",
    "waldinger:environment": "prod",
    "waldinger:team": "data-platform",
    "waldinger:batchMaxNodes": "4",
    "waldinger:batchIdleScaleDownMinutes": "10",
    "waldinger:servingMaxReplicas": "2",
    "waldinger:servingImageTag": "abc1234",
    "waldinger:dagsterImageTag": "abc1234",
    "waldinger:dagsterAllowedIps": json.dumps(["203.0.113.0/24"]),
    "waldinger:postgresAllowedIps": "198.51.100.7",
    "waldinger:snowflakeAccount": "myorg-prod",
    "waldinger:snowflakeUser": "WALDINGER_SVC",
    "waldinger:snowflakeRole": "WALDINGER",
    "waldinger:snowflakeWarehouse": "WALDINGER_WH",
    "waldinger:snowflakeDatabases": "RAW,ANALYTICS,WALDINGER",
    "waldinger:modelAzuremlUri": "azureml:mistral-7b-instruct:3",
    "waldinger:ciPrincipalId": CI_PRINCIPAL,
}
# The input that names a resource, for the types the program names itself (others keep their logical name).
NAME_INPUTS = {
    "azure-native:app:ContainerApp": "containerAppName",
    "azure-native:machinelearningservices:Compute": "computeName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:FileShare": "shareName",
    "azure-native:keyvault:Secret": "secretName",
    "azure-native:app:ManagedEnvironmentsStorage": "storageName",
    "azure-native:dbforpostgresql:Database": "databaseName",
    "azure-native:dbforpostgresql:FirewallRule": "firewallRuleName",
}


@dataclass
class RecordedResource:
    urn: str
    id: str  # the ARM id the mocks gave it
    type: str
    name: str
    inputs: dict[str, Any]
    parent_urn: str
    custom: bool


@dataclass
class MockedStack:
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.type == resource_type]

    def one(self, resource_type: str, name_contains: str = "") -> RecordedResource:
        found = [resource for resource in self.of_type(resource_type) if name_contains in resource.name]
        assert len(found) == 1, f"{len(found)} {resource_type} named *{name_contains}*: {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        return next(resource for resource in self.resources if resource.urn == urn)


def _arm_id(resource_type: str, name: str) -> str:
    provider = resource_type.split(":")[1]
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/waldinger-prod-rg/providers/{provider}/{name}"


def run_program(config: dict[str, str], secret_keys: list[str]) -> MockedStack:
    """Runs infra_pulumi/__main__.py under mocks with this stack config; returns what it declared."""
    import pulumi
    from pulumi.runtime import mocks, rpc, settings

    stack = MockedStack()

    class AzureMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            inputs = dict(args.inputs)
            name = inputs.get(NAME_INPUTS.get(args.typ, ""), args.name)
            arm_id = _arm_id(args.typ, name)
            outputs = {**inputs, "name": name, "id": arm_id}
            identity = inputs.get("identity") or {}
            if isinstance(identity.get("userAssignedIdentities"), list):
                # The input lists identity ids; the service answers with a map of id -> its principal.
                outputs["identity"] = {
                    **identity,
                    "userAssignedIdentities": {
                        identity_id: {"principalId": "p", "clientId": "c"}
                        for identity_id in identity["userAssignedIdentities"]
                    },
                }
            if args.typ == "azure-native:containerregistry:Registry":
                outputs["loginServer"] = f"{name}.azurecr.io"
            elif args.typ == "azure-native:managedidentity:UserAssignedIdentity":
                outputs |= {"principalId": f"principal-{name}", "clientId": f"client-{name}"}
            elif args.typ == "azure-native:keyvault:Vault":
                outputs["properties"] = {**inputs["properties"], "vaultUri": f"https://{name}.vault.azure.net/"}
            elif args.typ == "azure-native:storage:StorageAccount":
                outputs["primaryEndpoints"] = {"blob": f"https://{name}.blob.core.windows.net/"}
            elif args.typ == "azure-native:operationalinsights:Workspace":
                outputs["customerId"] = "log-analytics-customer-id"
            elif args.typ == "azure-native:app:ManagedEnvironment":
                outputs["defaultDomain"] = "happy-sea-123.westeurope.azurecontainerapps.io"
            elif args.typ == "azure-native:app:ContainerApp":
                ingress = (inputs.get("configuration") or {}).get("ingress")
                if ingress:
                    fqdn = f"{name}.happy-sea-123.westeurope.azurecontainerapps.io"
                    outputs["configuration"] = {**inputs["configuration"], "ingress": {**ingress, "fqdn": fqdn}}
            elif args.typ == "azure-native:dbforpostgresql:Server":
                outputs["fullyQualifiedDomainName"] = f"{name}.postgres.database.azure.com"
            elif args.typ == "azure-native:authorization:RoleDefinition":
                outputs["name"] = f"role-{args.name}"
            return arm_id, outputs

        def call(self, args: pulumi.runtime.MockCallArgs):
            if args.token == "azure-native:authorization:getClientConfig":
                return {"subscriptionId": SUBSCRIPTION, "tenantId": TENANT, "clientId": "ci", "objectId": "oid"}
            if args.token == "azure-native:operationalinsights:getSharedKeys":
                return {"primarySharedKey": "log-analytics-shared-key"}
            if args.token == "azure-native:storage:listStorageAccountKeys":
                return {"keys": [{"keyName": "key1", "value": "storage-account-key", "permissions": "FULL"}]}
            raise AssertionError(f"the program invoked {args.token}, which these mocks do not answer")

    class RecordingMonitor(mocks.MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                stack.resources.append(
                    RecordedResource(
                        urn=response.urn,
                        id=response.id,
                        type=request.type,
                        name=request.name,
                        inputs=rpc.deserialize_properties(request.object),
                        parent_urn=request.parent,
                        custom=request.custom,
                    )
                )
            return response

    settings.set_root_resource(None)
    pulumi.runtime.set_mocks(
        AzureMocks(), project="waldinger", stack="prod", preview=False, monitor=RecordingMonitor(AzureMocks())
    )
    pulumi.runtime.set_all_config(config, secret_keys=secret_keys)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(REPO_ROOT / "infra_pulumi" / "__main__.py"), run_name="__main__")
        exports = settings.get_root_resource().outputs
        return pulumi.Output.from_input(exports).apply(stack.outputs.update)

    program()
    return stack


@pytest.fixture(scope="session")
def mocked_stack() -> MockedStack:
    return run_program({**PROD_CONFIG, **SECRET_VALUES}, secret_keys=list(SECRET_VALUES))
