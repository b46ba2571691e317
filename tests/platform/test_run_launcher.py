"""The prod run launcher (waldinger_assets/platform): the Job adjustment as a pure function on the SDK's own models,
the instance config loaded from the real dagster.yaml through Dagster's config machinery, and a launch driven for
real through azure-mgmt-appcontainers against a fake of the Container Apps endpoints (tests/fakes/container_apps.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from azure.mgmt.appcontainers._utils.model_base import SdkJSONEncoder
from azure.mgmt.appcontainers.models import (
    Container,
    EnvironmentVar,
    Job,
    JobConfiguration,
    JobTemplate,
    ManagedServiceIdentity,
    UserAssignedIdentity,
)
from dagster import instance_for_test, job, op
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext, WorkerStatus
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._serdes import serialize_value
from dagster._serdes.config_class import ConfigurableClassData

from resources import environment
from tests.fakes.azure_ml import RG, SUB, FakeCredential, block_real_network
from tests.fakes.container_apps import FakeContainerApps
from tests.helpers import REPO_ROOT
from waldinger_assets.platform.run_launcher import (
    RunJobAdditions,
    RunVolume,
    WaldingerAcaRunLauncher,
    with_volumes_and_secrets,
)

# AcaRunLauncher is marked beta; the warning is dagster-azure's, not a finding of these tests.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

PLATFORM_DIR = REPO_ROOT / "waldinger_assets" / "platform"
ENVIRONMENT_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/managedEnvironments/waldinger-env"
RUN_IDENTITY = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/waldinger-run"
)
OTHER_IDENTITY = RUN_IDENTITY.replace("waldinger-run", "some-location")
KEY_VAULT_URL = "https://waldinger-kv.vault.azure.net/"
IMAGE = "waldingeracr.azurecr.io/waldinger-orchestrator:abc123"
VOLUMES = (
    RunVolume("schema-history", "schema-history", "/mnt/waldinger/schema-history"),
    RunVolume("dagster-storage", "dagster-storage", "/mnt/waldinger/storage"),
)
SECRET_ENV_VARS = {
    "DAGSTER_POSTGRES_URL": "dagster-postgres-url",
    "SNOWFLAKE_PRIVATE_KEY": "snowflake-private-key",
    "WALDINGER_ALERT_WEBHOOK_URL": "alert-webhook-url",
    "WALDINGER_SERVING_API_KEY": "serving-api-key",
}
# Values only the daemon's environment holds; no request to Azure may carry them.
SECRET_VALUES = {
    "DAGSTER_POSTGRES_URL": "postgresql://dagster:pg-password-only-the-vault-knows@db.example.com:5432/dagster",
    "SNOWFLAKE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----snowflake-key-only-the-vault-knows-----END PRIVATE KEY-----",
    "WALDINGER_ALERT_WEBHOOK_URL": "https://hooks.example.com/webhook-only-the-vault-knows",
    "WALDINGER_SERVING_API_KEY": "sk-serving-key-only-the-vault-knows",
}
ADDITIONS = RunJobAdditions(
    volumes=VOLUMES, secret_env_vars=SECRET_ENV_VARS, key_vault_url=KEY_VAULT_URL, identity_id=RUN_IDENTITY
)


def wire(model) -> dict:
    """The JSON the SDK sends for a model."""
    return json.loads(json.dumps(model, cls=SdkJSONEncoder, exclude_readonly=True))


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: {k: v for k, v in e.items() if k != "name"} for e in container.get("env") or []}


def parent_job(identity_id: str = RUN_IDENTITY) -> Job:
    """A Job shaped like the one AcaRunLauncher.launch_run builds, with a secret forwarded as a literal."""
    return Job(
        location="westeurope",
        environment_id=ENVIRONMENT_ID,
        identity=ManagedServiceIdentity(
            type="UserAssigned", user_assigned_identities={identity_id: UserAssignedIdentity()}
        ),
        configuration=JobConfiguration(trigger_type="Manual", replica_timeout=21600, replica_retry_limit=0),
        template=JobTemplate(
            containers=[
                Container(
                    name="dagster-run",
                    image=IMAGE,
                    command=["dagster", "api", "execute_run", "{}"],
                    env=[
                        EnvironmentVar(name="WALDINGER_ENV", value="prod"),
                        EnvironmentVar(name="DAGSTER_POSTGRES_URL", value=SECRET_VALUES["DAGSTER_POSTGRES_URL"]),
                        EnvironmentVar(name="WALDINGER_STORAGE_DIR", value="/mnt/waldinger/storage"),
                    ],
                )
            ]
        ),
    )


# --------------------------------------------------------------------------------------
# The Job adjustment, on the SDK's models
# --------------------------------------------------------------------------------------
def test_the_job_mounts_the_shares_and_takes_secrets_from_key_vault() -> None:
    original = parent_job()
    before = wire(original)

    adjusted = wire(with_volumes_and_secrets(original, ADDITIONS))

    template = adjusted["properties"]["template"]
    assert template["volumes"] == [
        {"name": "schema-history", "storageType": "AzureFile", "storageName": "schema-history"},
        {"name": "dagster-storage", "storageType": "AzureFile", "storageName": "dagster-storage"},
    ]
    (container,) = template["containers"]
    assert container["volumeMounts"] == [
        {"volumeName": "schema-history", "mountPath": "/mnt/waldinger/schema-history"},
        {"volumeName": "dagster-storage", "mountPath": "/mnt/waldinger/storage"},
    ]
    assert adjusted["properties"]["configuration"]["secrets"] == [
        {"name": secret, "keyVaultUrl": f"{KEY_VAULT_URL}secrets/{secret}", "identity": RUN_IDENTITY}
        for secret in SECRET_ENV_VARS.values()
    ]
    assert env_of(container) == {
        "WALDINGER_ENV": {"value": "prod"},
        "WALDINGER_STORAGE_DIR": {"value": "/mnt/waldinger/storage"},
        **{name: {"secretRef": secret} for name, secret in SECRET_ENV_VARS.items()},
    }
    assert SECRET_VALUES["DAGSTER_POSTGRES_URL"] not in json.dumps(adjusted)
    # Everything else is the parent's, and the parent's Job is left as it was.
    assert {k: v for k, v in container.items() if k not in ("env", "volumeMounts")} == {
        k: v for k, v in before["properties"]["template"]["containers"][0].items() if k != "env"
    }
    assert adjusted["identity"] == before["identity"]
    assert wire(original) == before


def test_the_vault_reading_identity_is_attached_when_a_code_location_runs_as_another() -> None:
    adjusted = wire(with_volumes_and_secrets(parent_job(identity_id=OTHER_IDENTITY), ADDITIONS))

    assert adjusted["identity"]["type"] == "UserAssigned"
    assert set(adjusted["identity"]["userAssignedIdentities"]) == {OTHER_IDENTITY, RUN_IDENTITY}


def test_without_additions_the_job_is_the_parents() -> None:
    assert wire(with_volumes_and_secrets(parent_job(), RunJobAdditions())) == wire(parent_job())


# --------------------------------------------------------------------------------------
# Config: the real dagster.yaml, through Dagster's config machinery
# --------------------------------------------------------------------------------------
PROD_ENV = {
    "AZURE_SUBSCRIPTION_ID": SUB,
    "AZURE_RESOURCE_GROUP": RG,
    "AZURE_LOCATION": "westeurope",
    "WALDINGER_ACA_ENVIRONMENT_ID": ENVIRONMENT_ID,
    "WALDINGER_RUN_IDENTITY_ID": RUN_IDENTITY,
    "WALDINGER_KEY_VAULT_URL": KEY_VAULT_URL,
    "WALDINGER_COMPUTE_LOGS_STORAGE_ACCOUNT": "waldingerlogs",
}
FORWARDED = [
    "WALDINGER_ENV",
    "WALDINGER_DATABASES",
    "SNOWFLAKE_ACCOUNT",
    "SNOWFLAKE_USER",
    "SNOWFLAKE_ROLE",
    "SNOWFLAKE_WAREHOUSE",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "AZUREML_WORKSPACE",
    "AZURE_CLIENT_ID",
    "WALDINGER_CONTAINER_APP",
    "WALDINGER_CONTAINER_NAME",
    "WALDINGER_AML_COMPUTE",
    "WALDINGER_AML_ENVIRONMENT",
    "WALDINGER_PIPES_STORAGE_ACCOUNT_URL",
    "WALDINGER_PIPES_CONTAINER",
    "WALDINGER_MODEL_AZUREML_URI",
    "WALDINGER_MODEL_HF_ID",
    "WALDINGER_MODEL_NAME",
    "WALDINGER_SCHEMA_HISTORY_DIR",
    "WALDINGER_STORAGE_DIR",
    "WALDINGER_DAGSTER_URL",
    "WALDINGER_DATA_DIR",
    "WALDINGER_COMPUTE_LOGS_STORAGE_ACCOUNT",
    "WALDINGER_IO_ADLS2_ACCOUNT",
    "WALDINGER_IO_ADLS2_CONTAINER",
]


@pytest.fixture
def prod_instance_ref(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> InstanceRef:
    """The instance ref the webserver and daemon build from the image's dagster.yaml (nothing connects yet)."""
    for name, value in {**PROD_ENV, **SECRET_VALUES}.items():
        monkeypatch.setenv(name, value)
    return InstanceRef.from_dir(str(tmp_path), config_dir=str(PLATFORM_DIR))


def test_the_instance_config_builds_the_launcher_with_the_prod_settings(prod_instance_ref: InstanceRef) -> None:
    launcher = prod_instance_ref.run_launcher

    assert isinstance(launcher, WaldingerAcaRunLauncher)
    assert (launcher._subscription_id, launcher._resource_group, launcher._region, launcher._environment_id) == (
        SUB,
        RG,
        "westeurope",
        ENVIRONMENT_ID,
    )
    assert launcher.identity_id == RUN_IDENTITY
    assert launcher.run_resources == {"cpu": "2", "memory": "4Gi"}
    assert launcher.run_job_replica_timeout == 21600
    assert list(launcher.env_vars) == FORWARDED
    assert launcher.run_job_additions == ADDITIONS
    assert not set(launcher.env_vars) & set(SECRET_ENV_VARS)

    coordinator = prod_instance_ref.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    assert coordinator.get_run_queue_config().max_concurrent_runs == 4
    # Step logs go to Blob Storage (a run's container and its disk are gone when it ends).
    compute_logs = prod_instance_ref.compute_logs_data
    assert compute_logs.class_name == "AzureBlobComputeLogManager"
    assert yaml.safe_load(compute_logs.config_yaml)["storage_account"] == {
        "env": "WALDINGER_COMPUTE_LOGS_STORAGE_ACCOUNT"
    }
    config = yaml.safe_load((PLATFORM_DIR / "dagster.yaml").read_text())
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    assert config["run_monitoring"]["enabled"] is True
    assert config["telemetry"] == {"enabled": False}


def test_the_instance_ref_on_each_runs_command_line_names_secrets_without_their_values(
    prod_instance_ref: InstanceRef,
) -> None:
    serialized = serialize_value(prod_instance_ref)

    assert "DAGSTER_POSTGRES_URL" in serialized
    assert not [name for name, value in SECRET_VALUES.items() if value in serialized]


def test_a_run_gets_every_variable_prod_requires(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*FORWARDED, *SECRET_ENV_VARS, "SNOWFLAKE_PRIVATE_KEY_PATH", *environment.MODEL_SOURCE_VARIABLES]:
        monkeypatch.delenv(name, raising=False)
    for name in [*FORWARDED, *SECRET_ENV_VARS]:
        monkeypatch.setenv(name, "set")
    monkeypatch.setenv("WALDINGER_MODEL_HF_ID", "")  # as the stack sets the model source it does not use

    assert environment.missing_prod_settings() == []


def launcher_config(**overrides) -> ConfigurableClassData:
    config = {
        "subscription_id": SUB,
        "resource_group": RG,
        "region": "westeurope",
        "environment_id": ENVIRONMENT_ID,
        "identity_id": RUN_IDENTITY,
        "key_vault_url": KEY_VAULT_URL,
        "secret_env_vars": {"DAGSTER_POSTGRES_URL": "dagster-postgres-url"},
        **overrides,
    }
    config = {k: v for k, v in config.items() if v is not None}
    return ConfigurableClassData(
        "waldinger_assets.platform.run_launcher", "WaldingerAcaRunLauncher", yaml.safe_dump(config)
    )


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"identity_id": None}, "identity_id"),
        ({"key_vault_url": None}, "key_vault_url"),
        ({"secret_env_vars": {"DAGSTER_POSTGRES_URL": "dagster_postgres_url"}}, "dagster_postgres_url"),
    ],
)
def test_secret_env_vars_without_what_they_need_fail_at_instance_load(overrides: dict, named: str) -> None:
    with pytest.raises(DagsterInvalidConfigError, match=named):
        launcher_config(**overrides).rehydrate()


def test_without_secret_env_vars_no_vault_is_needed() -> None:
    launcher = launcher_config(identity_id=None, key_vault_url=None, secret_env_vars=None).rehydrate()

    assert isinstance(launcher, WaldingerAcaRunLauncher)
    assert launcher.run_job_additions == RunJobAdditions()


# --------------------------------------------------------------------------------------
# A launch, through the SDK, against the fake Container Apps endpoints
# --------------------------------------------------------------------------------------
@op
def noop() -> None:
    pass


@job
def trivial() -> None:
    noop()


def test_a_launched_run_gets_the_shares_and_its_secrets_only_as_key_vault_references(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block_real_network(monkeypatch)
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WALDINGER_ENV", "prod")
    service = FakeContainerApps(polls_before_done=1)
    credential = FakeCredential()
    launcher = WaldingerAcaRunLauncher(
        inst_data=None,
        subscription_id=SUB,
        resource_group=RG,
        region="westeurope",
        environment_id=ENVIRONMENT_ID,
        # A secret also listed here (by mistake) must still not travel as a literal.
        env_vars=["WALDINGER_ENV", "DAGSTER_POSTGRES_URL"],
        run_resources={"cpu": "2", "memory": "4Gi"},
        identity_id=RUN_IDENTITY,
        run_job_replica_timeout=21600,
        volumes=VOLUMES,
        key_vault_url=KEY_VAULT_URL,
        secret_env_vars=SECRET_ENV_VARS,
        # polling_interval=0: without a Retry-After header the SDK waits polling_interval (30 s) between polls.
        client_kwargs={"credential": credential, "transport": service, "polling_interval": 0},
    )
    origin = JobPythonOrigin(
        "trivial",
        RepositoryPythonOrigin(
            executable_path=sys.executable,
            code_pointer=ModuleCodePointer("tests.platform.test_run_launcher", "trivial", str(REPO_ROOT)),
            container_image=IMAGE,
        ),
    )

    with instance_for_test() as instance:
        launcher.register_instance(instance)
        run = instance.create_run_for_job(trivial, job_code_origin=origin)
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))

        run = instance.get_run_by_id(run.run_id)
        job_name = run.tags["azure/container_apps/job_name"]
        (operation,) = service.job_operations
        # Created (201), polled until Succeeded, read back, then started; the start's own polling may follow.
        assert [(r["method"], r["path"].split("/providers/Microsoft.App/")[1]) for r in service.requests[:5]] == [
            ("PUT", f"jobs/{job_name}"),
            ("GET", f"locations/westeurope/containerappOperationStatuses/{operation}"),
            ("GET", f"locations/westeurope/containerappOperationStatuses/{operation}"),
            ("GET", f"jobs/{job_name}"),
            ("POST", f"jobs/{job_name}/start"),
        ]
        put = service.requests[0]
        assert put["status"] == 201
        assert service.jobs[(RG, job_name)]["properties"]["provisioningState"] == "Succeeded"
        assert ("https://management.azure.com/.default",) in credential.scopes_requested

        body = put["json"]
        template = body["properties"]["template"]
        assert [v["storageName"] for v in template["volumes"]] == ["schema-history", "dagster-storage"]
        (container,) = template["containers"]
        assert container["image"] == IMAGE
        assert container["volumeMounts"] == [
            {"volumeName": "schema-history", "mountPath": "/mnt/waldinger/schema-history"},
            {"volumeName": "dagster-storage", "mountPath": "/mnt/waldinger/storage"},
        ]
        secrets = body["properties"]["configuration"]["secrets"]
        assert secrets == [
            {"name": secret, "keyVaultUrl": f"{KEY_VAULT_URL}secrets/{secret}", "identity": RUN_IDENTITY}
            for secret in SECRET_ENV_VARS.values()
        ]
        assert env_of(container) == {
            "WALDINGER_ENV": {"value": "prod"},
            **{name: {"secretRef": secret} for name, secret in SECRET_ENV_VARS.items()},
        }
        assert RUN_IDENTITY in body["identity"]["userAssignedIdentities"]
        sent = b"".join(r["body"] for r in service.requests).decode()
        assert not [name for name, value in SECRET_VALUES.items() if value in sent]

        # Health checks are the parent's, answered from the Job's executions.
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        service.job_executions[(RG, job_name)][-1]["properties"]["status"] = "Succeeded"
        assert launcher.check_run_worker_health(run).status == WorkerStatus.SUCCESS
