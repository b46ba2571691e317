"""The IO manager's ADLS Gen2 storage (dagster-azure's ADLS2PickleIOManager): one file system that the Dagster
apps, every run the daemon launches and CI's Azure login all read and write, so a value CI materializes is the
value a daemon run loads. From the whole program run on Pulumi's mocks (conftest)."""

from __future__ import annotations

import yaml

from infra_pulumi.policy_pack import policies
from infra_pulumi.stack_outputs import settings_from_outputs
from tests.helpers import REPO_ROOT
from tests.infra.conftest import CI_PRINCIPAL, PROD_CONFIG, SECRET_VALUES, SUBSCRIPTION, MockedStack, run_program

ACCOUNT = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
APP = "azure-native:app:ContainerApp"
BLOB_DATA_CONTRIBUTOR = (
    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
)
VARIABLES = ("WALDINGER_IO_ADLS2_ACCOUNT", "WALDINGER_IO_ADLS2_CONTAINER")


def io_account(stack: MockedStack):
    (account,) = [resource for resource in stack.of_type(ACCOUNT) if resource.inputs.get("isHnsEnabled")]
    return account


def io_filesystem(stack: MockedStack):
    account_name = io_account(stack).name  # the mocks name an account after its logical name
    (filesystem,) = [
        resource for resource in stack.of_type(CONTAINER) if resource.inputs["accountName"] == account_name
    ]
    return filesystem


def scopes_granted_blob_data_contributor(stack: MockedStack, principal_id: str) -> set[str]:
    return {
        assignment.inputs["scope"]
        for assignment in stack.of_type(ROLE_ASSIGNMENT)
        if assignment.inputs["principalId"] == principal_id
        and assignment.inputs["roleDefinitionId"] == BLOB_DATA_CONTRIBUTOR
    }


def env_of(stack: MockedStack, app_name: str) -> dict[str, dict]:
    app = stack.one(APP, app_name).inputs
    return {variable["name"]: variable for variable in app["template"]["containers"][0]["env"]}


def test_one_adls_gen2_account_private_and_identity_only(mocked_stack):
    account = io_account(mocked_stack)
    assert account.inputs["isHnsEnabled"] is True
    assert account.inputs["kind"] == "StorageV2"
    assert account.inputs["allowBlobPublicAccess"] is False
    assert account.inputs["allowSharedKeyAccess"] is False  # Entra ID sign-ins only: no account key to leak
    assert account.inputs["minimumTlsVersion"] == "TLS1_2"
    assert account.parent_urn.endswith("waldinger:dagster:DagsterOnAzure::waldinger-prod-dagster")
    # The other accounts stay flat blob storage (the property is not even sent for them).
    others = [resource for resource in mocked_stack.of_type(ACCOUNT) if resource is not account]
    assert len(others) == 3 and all("isHnsEnabled" not in resource.inputs for resource in others)


def test_the_filesystem_exists_and_is_private(mocked_stack):
    filesystem = io_filesystem(mocked_stack)
    assert filesystem.inputs["containerName"] == "dagster-io"
    assert filesystem.inputs["publicAccess"] == "None"


def test_the_dagster_identity_the_run_identity_and_ci_may_write_the_filesystem_only(mocked_stack):
    filesystem = io_filesystem(mocked_stack).id
    dagster_identity = mocked_stack.one(IDENTITY, "dagster-identity")
    assert filesystem in scopes_granted_blob_data_contributor(mocked_stack, f"principal-{dagster_identity.name}")

    # The runs sign in as the identity the daemon hands to the run launcher (dagster.yaml: identity_id and the
    # forwarded AZURE_CLIENT_ID); look it up from the daemon's environment rather than assume it.
    daemon_env = env_of(mocked_stack, "daemon")
    (run_identity,) = [
        identity
        for identity in mocked_stack.of_type(IDENTITY)
        if identity.id == daemon_env["WALDINGER_RUN_IDENTITY_ID"]["value"]
    ]
    assert daemon_env["AZURE_CLIENT_ID"]["value"] == f"client-{run_identity.name}"
    assert filesystem in scopes_granted_blob_data_contributor(mocked_stack, f"principal-{run_identity.name}")

    (ci_grant,) = [
        assignment
        for assignment in mocked_stack.of_type(ROLE_ASSIGNMENT)
        if assignment.inputs["principalId"] == CI_PRINCIPAL
    ]
    assert ci_grant.inputs["roleDefinitionId"] == BLOB_DATA_CONTRIBUTOR
    assert ci_grant.inputs["scope"] == filesystem  # the file system, not the account or the resource group
    assert ci_grant.inputs["principalType"] == "ServicePrincipal"

    # Nobody else gets the file system (the serving app and the batch cluster do not touch asset values).
    holders = {
        assignment.inputs["principalId"]
        for assignment in mocked_stack.of_type(ROLE_ASSIGNMENT)
        if assignment.inputs["scope"] == filesystem
    }
    assert holders == {f"principal-{dagster_identity.name}", CI_PRINCIPAL}


def test_outputs_name_the_account_and_the_filesystem(mocked_stack):
    assert mocked_stack.outputs["ioAdls2Account"] == io_account(mocked_stack).name
    assert mocked_stack.outputs["ioAdls2Container"] == "dagster-io"
    settings = settings_from_outputs(mocked_stack.outputs)
    assert settings["WALDINGER_IO_ADLS2_ACCOUNT"] == io_account(mocked_stack).name
    assert settings["WALDINGER_IO_ADLS2_CONTAINER"] == "dagster-io"


def test_the_apps_and_every_run_get_the_settings(mocked_stack):
    for app_name in ("webserver", "daemon"):
        env = env_of(mocked_stack, app_name)
        assert env["WALDINGER_IO_ADLS2_ACCOUNT"]["value"] == io_account(mocked_stack).name, app_name
        assert env["WALDINGER_IO_ADLS2_CONTAINER"]["value"] == "dagster-io", app_name
    # The run launcher forwards what dagster.yaml lists from the daemon's environment to each run's job.
    instance = yaml.safe_load((REPO_ROOT / "waldinger_assets" / "platform" / "dagster.yaml").read_text())
    assert set(VARIABLES) <= set(instance["run_launcher"]["config"]["env_vars"])


def test_the_policy_pack_passes_the_new_resources(mocked_stack):
    for resource in (io_account(mocked_stack), io_filesystem(mocked_stack)):
        assert policies.violations(resource.type, resource.inputs, name=resource.name) == {}, resource.name
    assert policies.check_cost_tags_present(ACCOUNT, io_account(mocked_stack).inputs) == []


def test_a_stack_without_a_ci_principal_grants_only_the_dagster_identity():
    config = {**PROD_CONFIG, **SECRET_VALUES, "waldinger:environment": "dev"}
    del config["waldinger:ciPrincipalId"]
    stack = run_program(config, secret_keys=list(SECRET_VALUES))
    filesystem = io_filesystem(stack).id
    holders = {
        assignment.inputs["principalId"]
        for assignment in stack.of_type(ROLE_ASSIGNMENT)
        if assignment.inputs["scope"] == filesystem
    }
    assert holders == {"principal-waldinger-dev-dagster-identity"}
