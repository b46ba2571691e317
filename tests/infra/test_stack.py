"""The stack's resources and their key properties, from the whole program run on Pulumi's mocks (conftest)."""

from __future__ import annotations

import inspect
import json
import re

import pulumi_azure_native as azure_native
import pytest
import yaml

from infra_pulumi.policy_pack import policies
from infra_pulumi.stack_outputs import SETTINGS_BY_OUTPUT, settings_from_outputs
from resources import environment
from tests.helpers import REPO_ROOT
from tests.infra.conftest import PROD_CONFIG, SECRET_VALUES, SUBSCRIPTION, MockedStack, run_program

APP = "azure-native:app:ContainerApp"
COMPUTE = "azure-native:machinelearningservices:Compute"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
COMPONENTS = {
    "waldinger:ml:MlPlatform",
    "waldinger:batch:BatchCompute",
    "waldinger:training:TrainingCompute",
    "waldinger:serving:RealtimeServing",
    "waldinger:dagster:DagsterOnAzure",
    "waldinger:secrets:PipelineSecrets",
}


def role_id(guid: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def grants_to(stack: MockedStack, identity_name: str) -> dict[str, set[str]]:
    """Role definition id -> scopes, for the role assignments of one identity (mocked principal ids)."""
    granted: dict[str, set[str]] = {}
    for assignment in stack.of_type(ROLE_ASSIGNMENT):
        if assignment.inputs["principalId"] == f"principal-{identity_name}":
            assert assignment.inputs["principalType"] == "ServicePrincipal"
            granted.setdefault(assignment.inputs["roleDefinitionId"], set()).add(assignment.inputs["scope"])
    return granted


def arm_id(stack: MockedStack, resource_type: str, name_contains: str) -> str:
    return stack.one(resource_type, name_contains).id


def test_one_component_per_concern_and_every_resource_inside_one(mocked_stack):
    components = {resource.type for resource in mocked_stack.resources if not resource.custom}
    assert components == COMPONENTS
    for resource in mocked_stack.resources:
        if resource.custom and resource.type != "azure-native:resources:ResourceGroup":
            parent = mocked_stack.by_urn(resource.parent_urn)
            assert parent.type in COMPONENTS, f"{resource.name} is not inside a component"


def test_ml_platform_workspace_has_its_dependencies_and_a_registry_without_admin_user(mocked_stack):
    workspace = mocked_stack.one("azure-native:machinelearningservices:Workspace").inputs
    assert workspace["identity"] == {"type": "SystemAssigned"}
    for key, resource_type in {
        "storageAccount": "azure-native:storage:StorageAccount",
        "keyVault": "azure-native:keyvault:Vault",
        "applicationInsights": "azure-native:applicationinsights:Component",
        "containerRegistry": "azure-native:containerregistry:Registry",
    }.items():
        assert workspace[key].startswith(f"/subscriptions/{SUBSCRIPTION}/"), key
        assert mocked_stack.by_urn(mocked_stack.one(resource_type, "-ml").urn)
    registry = mocked_stack.one("azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False
    vault = mocked_stack.one("azure-native:keyvault:Vault").inputs["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True  # prod


def test_batch_cluster_scales_to_zero_with_a_max_bound_and_idle_scale_down(mocked_stack):
    compute = mocked_stack.one(COMPUTE, "batch-cluster").inputs
    assert compute["computeName"] == "waldinger-batch"
    properties = compute["properties"]
    assert properties["computeType"] == "AmlCompute"
    assert properties["properties"]["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 4,
        "nodeIdleTimeBeforeScaleDown": "PT10M",
    }
    assert properties["properties"]["remoteLoginPortPublicAccess"] == "Disabled"
    identity_id = arm_id(mocked_stack, IDENTITY, "batch-identity")
    assert compute["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity_id]}
    granted = grants_to(mocked_stack, "waldinger-prod-batch-identity")
    pipes_container = arm_id(mocked_stack, "azure-native:storage:BlobContainer", "pipes")
    assert granted[role_id("ba92f5b4-2d11-453d-a403-e96b0029c9fe")] == {pipes_container}  # blob data contributor
    pipes_account = mocked_stack.one("azure-native:storage:StorageAccount", "pipes").inputs
    assert pipes_account["allowSharedKeyAccess"] is False and pipes_account["allowBlobPublicAccess"] is False
    serving_environment = mocked_stack.one("azure-native:machinelearningservices:EnvironmentVersion").inputs
    assert serving_environment["properties"]["image"] == "waldinger-prod-mlacr.azurecr.io/waldinger-serving:abc1234"


def test_the_only_clusters_are_batch_and_training(mocked_stack):
    assert sorted(resource.inputs["computeName"] for resource in mocked_stack.of_type(COMPUTE)) == [
        "waldinger-batch",
        "waldinger-training",
    ]


def test_training_cluster_is_a_gpu_cluster_that_scales_to_zero_with_its_own_identity(mocked_stack):
    compute = mocked_stack.one(COMPUTE, "training-cluster")
    assert compute.inputs["computeName"] == "waldinger-training"
    assert mocked_stack.by_urn(compute.parent_urn).type == "waldinger:training:TrainingCompute"
    inputs = compute.inputs
    properties = inputs["properties"]
    assert properties["computeType"] == "AmlCompute"
    assert properties["disableLocalAuth"] is True
    cluster = properties["properties"]
    # PROD_CONFIG sets none of the training keys: these are the defaults.
    assert cluster["vmSize"] == "Standard_NC24ads_A100_v4"
    assert cluster["vmPriority"] == "Dedicated"
    assert cluster["osType"] == "Linux"
    assert cluster["remoteLoginPortPublicAccess"] == "Disabled"
    assert cluster["scaleSettings"] == {"minNodeCount": 0, "maxNodeCount": 1, "nodeIdleTimeBeforeScaleDown": "PT10M"}
    assert inputs["location"] == "westeurope"
    assert inputs["tags"] == {"team": "data-platform", "project": "waldinger", "environment": "prod"}
    identity_id = arm_id(mocked_stack, IDENTITY, "training-identity")
    assert inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity_id]}
    assert identity_id != arm_id(mocked_stack, IDENTITY, "batch-identity")
    granted = grants_to(mocked_stack, "waldinger-prod-training-identity")
    workspace = arm_id(mocked_stack, "azure-native:machinelearningservices:Workspace", "")
    assert granted == {
        # Pipes messages: the same container as the batch job's (one WALDINGER_PIPES_CONTAINER for the pipeline).
        role_id("ba92f5b4-2d11-453d-a403-e96b0029c9fe"): {
            arm_id(mocked_stack, "azure-native:storage:BlobContainer", "pipes")
        },
        role_id("role-waldinger-prod-ml-model-reader"): {workspace},
        role_id("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"): {  # blob data reader: the registered models' files
            arm_id(mocked_stack, "azure-native:storage:StorageAccount", "mlstore")
        },
    }


def test_training_cluster_vm_size_idle_time_and_bound_come_from_the_stack_config():
    config = {
        **PROD_CONFIG,
        **SECRET_VALUES,
        "waldinger:trainingVmSize": "Standard_NC48ads_A100_v4",
        "waldinger:trainingMaxNodes": "2",
        "waldinger:trainingIdleScaleDownMinutes": "5",
    }
    stack = run_program(config, secret_keys=list(SECRET_VALUES))
    cluster = stack.one(COMPUTE, "training-cluster").inputs["properties"]["properties"]
    assert cluster["vmSize"] == "Standard_NC48ads_A100_v4"
    assert cluster["scaleSettings"] == {"minNodeCount": 0, "maxNodeCount": 2, "nodeIdleTimeBeforeScaleDown": "PT5M"}
    # The batch cluster keeps its own settings.
    batch = stack.one(COMPUTE, "batch-cluster").inputs["properties"]["properties"]
    assert batch["vmSize"] == "Standard_NC24ads_A100_v4"
    assert batch["scaleSettings"]["maxNodeCount"] == 4
    assert stack.outputs["trainingCompute"] == "waldinger-training"


def test_serving_app_scales_to_zero_behind_probes_and_ingress(mocked_stack):
    environment = mocked_stack.one("azure-native:app:ManagedEnvironment").inputs
    profiles = {profile["name"]: profile["workloadProfileType"] for profile in environment["workloadProfiles"]}
    assert profiles == {"Consumption": "Consumption", "gpu": "Consumption-GPU-NC24-A100"}
    assert environment["appLogsConfiguration"]["destination"] == "log-analytics"

    app = mocked_stack.one(APP, "serving").inputs
    assert app["workloadProfileName"] == "gpu"
    assert app["tags"]["workload"] == "model-serving"
    scale = app["template"]["scale"]
    assert scale["minReplicas"] == 0 and scale["maxReplicas"] == 2
    assert scale["rules"] == [{"name": "http-concurrency", "http": {"metadata": {"concurrentRequests": "16"}}}]
    (container,) = app["template"]["containers"]
    assert container["name"] == "vllm"
    assert container["image"] == "waldinger-prod-mlacr.azurecr.io/waldinger-serving:abc1234"
    assert {probe["type"] for probe in container["probes"]} == {"Startup", "Liveness", "Readiness"}
    assert all(probe["httpGet"] == {"path": "/health", "port": 8000} for probe in container["probes"])
    assert app["configuration"]["ingress"]["targetPort"] == 8000
    assert app["configuration"]["ingress"]["allowInsecure"] is False
    env = {variable["name"]: variable for variable in container["env"]}
    assert {"AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE", "AZURE_CLIENT_ID"} <= set(env)
    # The endpoint requires a bearer key, read from Key Vault by the app's identity, which may read only that secret.
    assert env["VLLM_API_KEY"] == {"name": "VLLM_API_KEY", "secretRef": "serving-api-key"}
    (secret,) = app["configuration"]["secrets"]
    assert secret["keyVaultUrl"].endswith("/secrets/serving-api-key") and "value" not in secret
    api_key_secret = arm_id(mocked_stack, "azure-native:keyvault:Secret", "serving-api-key")
    granted = grants_to(mocked_stack, "waldinger-prod-serving-identity")
    assert granted[role_id("4633458b-17de-408a-b874-0445c86b69e6")] == {api_key_secret}  # that secret only

    identity_id = arm_id(mocked_stack, IDENTITY, "serving-identity")
    assert app["identity"]["userAssignedIdentities"] == [identity_id]
    registry = mocked_stack.one("azure-native:containerregistry:Registry")
    assert app["configuration"]["registries"] == [{"server": f"{registry.name}.azurecr.io", "identity": identity_id}]
    granted = grants_to(mocked_stack, "waldinger-prod-serving-identity")
    assert granted[role_id("7f951dda-4ed3-4680-a7ca-43fe172d538d")] == {
        arm_id(mocked_stack, "azure-native:containerregistry:Registry", "")
    }  # AcrPull on the registry, nothing wider
    model_reader = role_id("role-waldinger-prod-ml-model-reader")
    assert granted[model_reader] == {arm_id(mocked_stack, "azure-native:machinelearningservices:Workspace", "")}
    reader_role = mocked_stack.one("azure-native:authorization:RoleDefinition", "model-reader").inputs
    assert all(action.endswith(("/read", "listsecrets/action")) for action in reader_role["permissions"][0]["actions"])


def test_dagster_runs_on_postgres_with_webserver_daemon_and_run_jobs(mocked_stack):
    server = mocked_stack.one("azure-native:dbforpostgresql:Server").inputs
    assert server["version"] == "16"
    assert server["sku"] == {"name": "Standard_B1ms", "tier": "Burstable"}
    assert mocked_stack.one("azure-native:dbforpostgresql:Database").inputs["databaseName"] == "dagster"
    rules = {
        rule.inputs["firewallRuleName"]: rule.inputs
        for rule in mocked_stack.of_type("azure-native:dbforpostgresql:FirewallRule")
    }
    assert rules["allowed-0"]["startIpAddress"] == rules["allowed-0"]["endIpAddress"] == "198.51.100.7"

    webserver = mocked_stack.one(APP, "webserver").inputs
    daemon = mocked_stack.one(APP, "daemon").inputs
    assert webserver["template"]["containers"][0]["command"][0] == "dagster-webserver"
    assert daemon["template"]["containers"][0]["command"][:2] == ["dagster-daemon", "run"]
    assert daemon["template"]["scale"] == {"minReplicas": 1, "maxReplicas": 1}
    assert "ingress" not in daemon["configuration"]
    restrictions = webserver["configuration"]["ingress"]["ipSecurityRestrictions"]
    assert [(rule["action"], rule["ipAddressRange"]) for rule in restrictions] == [("Allow", "203.0.113.0/24")]

    identity_id = arm_id(mocked_stack, IDENTITY, "dagster-identity")
    for app in (webserver, daemon):
        secrets = app["configuration"]["secrets"]
        assert {secret["name"] for secret in secrets} == {
            "dagster-postgres-url",
            "snowflake-private-key",
            "alert-webhook-url",
            "serving-api-key",
        }
        for secret in secrets:
            assert "value" not in secret
            assert secret["identity"] == identity_id
            assert secret["keyVaultUrl"] == f"https://waldinger-prod-ml-kv.vault.azure.net/secrets/{secret['name']}"
        env = {variable["name"]: variable for variable in app["template"]["containers"][0]["env"]}
        assert env["DAGSTER_POSTGRES_URL"] == {"name": "DAGSTER_POSTGRES_URL", "secretRef": "dagster-postgres-url"}
        assert env["SNOWFLAKE_PRIVATE_KEY"]["secretRef"] == "snowflake-private-key"
        assert env["WALDINGER_ENV"]["value"] == "prod"
        mounts = {mount["mountPath"] for mount in app["template"]["containers"][0]["volumeMounts"]}
        assert mounts == {env["WALDINGER_SCHEMA_HISTORY_DIR"]["value"], env["WALDINGER_STORAGE_DIR"]["value"]}

    granted = grants_to(mocked_stack, "waldinger-prod-dagster-identity")
    launcher_role = mocked_stack.one("azure-native:authorization:RoleDefinition", "run-launcher").inputs
    assert "Microsoft.App/jobs/write" in launcher_role["permissions"][0]["actions"]
    assert granted[role_id("role-waldinger-prod-dagster-run-launcher-role")] == {
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/waldinger-prod-rg/providers/resources/waldinger-prod-rg"
    }
    serving_app = arm_id(mocked_stack, APP, "serving")
    assert granted[role_id("role-waldinger-prod-dagster-serving-deployer-role")] == {serving_app}
    assert granted[role_id("4633458b-17de-408a-b874-0445c86b69e6")]  # Key Vault Secrets User
    # Blob Data Contributor on exactly three containers: Pipes messages, the runs' step logs, asset values.
    assert granted[role_id("ba92f5b4-2d11-453d-a403-e96b0029c9fe")] == {
        arm_id(mocked_stack, "azure-native:storage:BlobContainer", "pipes"),
        arm_id(mocked_stack, "azure-native:storage:BlobContainer", "compute-logs"),
        arm_id(mocked_stack, "azure-native:storage:BlobContainer", "io-filesystem"),
    }


def test_every_variable_the_run_launcher_forwards_is_set_on_the_daemon(mocked_stack):
    """dagster.yaml's env_vars are read from the daemon's environment at every launch: one missing name and
    every run fails."""
    instance = yaml.safe_load((REPO_ROOT / "waldinger_assets" / "platform" / "dagster.yaml").read_text())
    launcher = instance["run_launcher"]["config"]
    daemon_env = {
        variable["name"]: variable
        for variable in mocked_stack.one(APP, "daemon").inputs["template"]["containers"][0]["env"]
    }
    missing = [name for name in launcher["env_vars"] if name not in daemon_env]
    assert not missing, f"dagster.yaml forwards {missing}, which the stack does not set on the daemon"
    for key in ("subscription_id", "resource_group", "region", "environment_id", "identity_id", "key_vault_url"):
        assert launcher[key]["env"] in daemon_env, key
    for variable, secret in launcher["secret_env_vars"].items():
        assert daemon_env[variable]["secretRef"] == secret
    assert "DAGSTER_CURRENT_IMAGE" in daemon_env
    storages = {
        storage.inputs["storageName"] for storage in mocked_stack.of_type("azure-native:app:ManagedEnvironmentsStorage")
    }
    assert {volume["storage_name"] for volume in launcher["volumes"]} == storages
    mounts = {volume["mount_path"] for volume in launcher["volumes"]}
    assert mounts == {daemon_env["WALDINGER_SCHEMA_HISTORY_DIR"]["value"], daemon_env["WALDINGER_STORAGE_DIR"]["value"]}


def _accepts_tags(resource_type: str) -> bool:
    _, module, class_name = resource_type.split(":")
    resource_class = getattr(getattr(azure_native, module), class_name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def test_every_taggable_resource_carries_the_cost_tags(mocked_stack):
    taggable = [resource for resource in mocked_stack.resources if resource.custom and _accepts_tags(resource.type)]
    assert len(taggable) >= 20
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        assert {key: tags.get(key) for key in ("team", "project", "environment")} == {
            "team": "data-platform",
            "project": "waldinger",
            "environment": "prod",
        }, resource.name
        # The policy pack must know every taggable type the stack uses, or it could not catch a missing tag.
        assert resource.type in policies.TAGGABLE_TYPES, resource.type


def test_the_policy_pack_passes_the_stack_and_catches_a_change_to_it(mocked_stack):
    for resource in mocked_stack.resources:
        if resource.custom:
            assert policies.violations(resource.type, resource.inputs, name=resource.name) == {}, resource.name
    compute = json.loads(json.dumps(mocked_stack.one(COMPUTE, "batch-cluster").inputs))
    compute["properties"]["properties"]["scaleSettings"]["minNodeCount"] = 1
    compute["properties"]["properties"]["scaleSettings"]["maxNodeCount"] = 40
    assert len(policies.violations(COMPUTE, compute)[policies.COMPUTE_SCALES_TO_ZERO]) == 2
    app = json.loads(json.dumps(mocked_stack.one(APP, "serving").inputs))
    app["template"]["scale"]["minReplicas"] = 1
    del app["tags"]["team"]
    found = policies.violations(APP, app)
    assert set(found) == {policies.MODEL_SERVING_SCALES_TO_ZERO, policies.COST_TAGS_PRESENT}


def test_the_policy_pack_rejects_the_gpu_training_cluster_kept_at_one_node(mocked_stack):
    training = mocked_stack.one(COMPUTE, "training-cluster")
    assert policies.violations(COMPUTE, training.inputs, name=training.name) == {}
    warm = json.loads(json.dumps(training.inputs))
    warm["properties"]["properties"]["scaleSettings"]["minNodeCount"] = 1
    assert policies.violations(COMPUTE, warm, name=training.name) == {
        policies.COMPUTE_SCALES_TO_ZERO: [
            "properties.properties.scaleSettings.minNodeCount is 1; set it to 0 so the cluster releases every node"
            " when idle"
        ]
    }


def test_outputs_are_exactly_the_settings_prod_dagster_reads(mocked_stack):
    exported = set(mocked_stack.outputs)
    assert exported == set(SETTINGS_BY_OUTPUT) - {"modelHfId"}  # the prod stack takes its model from Azure ML
    settings = settings_from_outputs(mocked_stack.outputs)
    assert settings["WALDINGER_ENV"] == "prod"
    assert settings["WALDINGER_CONTAINER_APP"] == "waldinger-prod-serving-app"
    assert settings["WALDINGER_AML_COMPUTE"] == "waldinger-batch"
    assert settings["WALDINGER_AZUREML_TRAINING_COMPUTE"] == "waldinger-training"
    assert settings["WALDINGER_DAGSTER_URL"].startswith("https://waldinger-prod-dagster.")
    # Each setting is one the project's code (resources/) or the prod instance (dagster.yaml) reads.
    readers = (REPO_ROOT / "resources" / "environment.py").read_text() + (
        REPO_ROOT / "waldinger_assets" / "platform" / "dagster.yaml"
    ).read_text()
    for variable in SETTINGS_BY_OUTPUT.values():
        assert re.search(rf"\b{variable}\b", readers), f"nothing reads {variable}"


def test_the_training_compute_output_is_what_the_orchestrator_reads(mocked_stack, monkeypatch):
    settings = settings_from_outputs(mocked_stack.outputs)
    monkeypatch.setenv("WALDINGER_AZUREML_TRAINING_COMPUTE", settings["WALDINGER_AZUREML_TRAINING_COMPUTE"])
    assert environment.azure_training_compute() == "waldinger-training"
    monkeypatch.setenv("WALDINGER_AZUREML_TRAINING_COMPUTE", "gpu-elsewhere")
    assert environment.azure_training_compute() == "gpu-elsewhere"
    # Without the setting the orchestrator falls back to the name the stack gives the cluster.
    monkeypatch.delenv("WALDINGER_AZUREML_TRAINING_COMPUTE")
    assert environment.azure_training_compute() == mocked_stack.outputs["trainingCompute"]


@pytest.mark.parametrize("secret", sorted(SECRET_VALUES))
def test_no_secret_reaches_an_output_or_an_app(mocked_stack, secret):
    value = SECRET_VALUES[secret]
    assert value not in json.dumps(mocked_stack.outputs)
    holders = [resource.name for resource in mocked_stack.resources if value in json.dumps(resource.inputs)]
    allowed = {"waldinger-prod-dagster-postgres", "waldinger-prod-dagster-postgres-url"}  # server, its URL secret
    allowed |= {name for name in holders if name.startswith("waldinger-prod-secrets-")}  # the Key Vault secrets
    assert set(holders) <= allowed, holders
    assert holders, "the secret went nowhere: Key Vault should hold it"
