"""Bad stack config fails before any resource is declared, with a message that names the key."""

from __future__ import annotations

import json
import subprocess

import pytest

from infra_pulumi.config import (
    OPTIONAL_KEYS,
    REQUIRED_KEYS,
    InfraConfigError,
    read_stack_config,
    settings_from_config,
)
from tests.helpers import REPO_ROOT, VENV_BIN
from tests.infra.conftest import CI_PRINCIPAL, PROD_CONFIG, SECRET_VALUES

VALUES = {key.removeprefix("waldinger:"): value for key, value in PROD_CONFIG.items()}


def with_values(**changes: str | None) -> dict[str, str | None]:
    return {**VALUES, **changes}


def test_the_prod_config_is_valid_and_defaults_are_the_cheap_ones():
    settings = settings_from_config(VALUES)
    assert settings.batch_max_nodes == 4 and settings.batch_idle_minutes == 10
    assert settings.dagster_allowed_ips == ("203.0.113.0/24",)
    assert settings.postgres_allowed_ips == ("198.51.100.7/32",)
    assert settings.snowflake_databases == ("RAW", "ANALYTICS", "WALDINGER")
    assert settings.tags == {"team": "data-platform", "project": "waldinger", "environment": "prod"}
    assert settings.serving_gpu_profile == "Consumption-GPU-NC24-A100" and settings.is_serverless_gpu
    # The GPU training cluster: one A100 node at most unless the stack says otherwise.
    assert settings.training_vm_size == "Standard_NC24ads_A100_v4"
    assert settings.training_max_nodes == 1 and settings.training_idle_minutes == 10


def test_the_training_cluster_settings_are_read_from_the_stack_config():
    settings = settings_from_config(
        with_values(trainingVmSize=" Standard_NC48ads_A100_v4 ", trainingMaxNodes="3", trainingIdleScaleDownMinutes="5")
    )
    assert settings.training_vm_size == "Standard_NC48ads_A100_v4"
    assert settings.training_max_nodes == 3 and settings.training_idle_minutes == 5
    # Each cluster has its own settings.
    assert settings.batch_vm_size == "Standard_NC24ads_A100_v4" and settings.batch_max_nodes == 4


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"location": None}, "waldinger:location", "is not set"),
        ({"team": ""}, "waldinger:team", "is not set"),
        ({"environment": "production"}, "waldinger:environment", "not one of dev, test, staging, prod"),
        ({"batchMaxNodes": None}, "waldinger:batchMaxNodes", "is not set"),
        ({"batchMaxNodes": "0"}, "waldinger:batchMaxNodes", "not a whole number from 1 to 100"),
        ({"batchMaxNodes": "four"}, "waldinger:batchMaxNodes", "not a whole number"),
        ({"batchIdleScaleDownMinutes": "120"}, "waldinger:batchIdleScaleDownMinutes", "from 2 to 30"),
        ({"trainingMaxNodes": "0"}, "waldinger:trainingMaxNodes", "not a whole number from 1 to 100"),
        ({"trainingMaxNodes": "one"}, "waldinger:trainingMaxNodes", "not a whole number"),
        ({"trainingIdleScaleDownMinutes": "60"}, "waldinger:trainingIdleScaleDownMinutes", "from 2 to 30"),
        ({"servingGpuProfile": "A100"}, "waldinger:servingGpuProfile", "not one of"),
        ({"servingMaxReplicas": "-1"}, "waldinger:servingMaxReplicas", "from 1 to 10"),
        ({"servingImageTag": "has space"}, "waldinger:servingImageTag", "not a Docker image tag"),
        ({"dagsterAllowedIps": None}, "waldinger:dagsterAllowedIps", "is not set"),
        ({"dagsterAllowedIps": '["0.0.0.0/0"]'}, "waldinger:dagsterAllowedIps", "whole internet"),
        ({"dagsterAllowedIps": "10.0.0.300"}, "waldinger:dagsterAllowedIps", "not an IP address or CIDR"),
        ({"postgresAllowedIps": "[1, 2]"}, "waldinger:postgresAllowedIps", "list of strings"),
        ({"snowflakeDatabases": "RAW,AN ALYTICS"}, "waldinger:snowflakeDatabases", "not a Snowflake identifier"),
        ({"snowflakeWarehouse": None}, "waldinger:snowflakeWarehouse", "is not set"),
        ({"modelAzuremlUri": None}, "waldinger:modelAzuremlUri", "exactly one model source"),
        ({"modelHfId": "mistralai/Mistral-7B-Instruct-v0.3"}, "waldinger:modelHfId", "both are set"),
        ({"modelAzuremlUri": "mistral:3"}, "waldinger:modelAzuremlUri", "not an Azure ML model URI"),
        ({"extraTags": '["a"]'}, "waldinger:extraTags", "JSON object"),
    ],
)
def test_a_missing_or_invalid_setting_names_its_key_and_how_to_set_it(changes, key, words):
    with pytest.raises(InfraConfigError) as raised:
        settings_from_config(with_values(**changes))
    message = str(raised.value)
    assert key in message
    assert words.lower() in message.lower()
    assert "pulumi config set" in message


def test_the_ci_principal_is_required_for_prod_only_and_must_be_an_object_id():
    assert settings_from_config(VALUES).ci_principal_id == CI_PRINCIPAL
    with pytest.raises(InfraConfigError) as raised:
        settings_from_config(with_values(ciPrincipalId=None))
    message = str(raised.value)
    assert "waldinger:ciPrincipalId is not set, and a prod stack needs it" in message
    assert "az ad sp show" in message and "pulumi config set waldinger:ciPrincipalId" in message
    # Other stacks may leave it out: then no CI login gets access to the IO manager's storage.
    assert settings_from_config(with_values(environment="dev", ciPrincipalId=None)).ci_principal_id is None
    for bad in ("my-ci-app", "22222222222222222222222222222222", "{22222222-2222-2222-2222-222222222222}"):
        with pytest.raises(InfraConfigError, match=r"waldinger:ciPrincipalId is .*not an object id"):
            settings_from_config(with_values(ciPrincipalId=bad))


def _read_with(config: dict[str, str], secret_keys: list[str]):
    import pulumi

    pulumi.runtime.set_all_config(config, secret_keys=secret_keys)
    try:
        return read_stack_config()
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])


def test_secrets_must_be_set_as_pulumi_secrets():
    config = {**PROD_CONFIG, **SECRET_VALUES}
    with pytest.raises(InfraConfigError, match=r"waldinger:postgresAdminPassword is stored as plain config"):
        _read_with(config, secret_keys=[key for key in SECRET_VALUES if key != "waldinger:postgresAdminPassword"])
    missing = {key: value for key, value in config.items() if key != "waldinger:snowflakePrivateKey"}
    with pytest.raises(InfraConfigError, match=r"waldinger:snowflakePrivateKey is not set.*--secret"):
        _read_with(missing, secret_keys=list(SECRET_VALUES))
    settings, secrets = _read_with(config, secret_keys=list(SECRET_VALUES))
    assert settings.environment == "prod"
    assert secrets.snowflake_private_key is not None


def test_the_stack_files_in_the_repo_are_valid_and_hold_no_secret():
    import yaml

    for stack in ("dev", "prod"):
        config = yaml.safe_load((REPO_ROOT / "infra_pulumi" / f"Pulumi.{stack}.yaml").read_text())["config"]
        values = {
            key.removeprefix("waldinger:"): value if isinstance(value, str) else json.dumps(value)
            for key, value in config.items()
        }
        # A misspelt key would be ignored, and its setting silently take the default.
        assert set(values) <= set(REQUIRED_KEYS + OPTIONAL_KEYS), set(values) - set(REQUIRED_KEYS + OPTIONAL_KEYS)
        settings = settings_from_config(values)
        assert settings.environment == stack
        assert settings.training_vm_size == "Standard_NC24ads_A100_v4" and settings.training_max_nodes == 1
        assert not {"snowflakePrivateKey", "postgresAdminPassword", "alertWebhookUrl", "servingApiKey"} & set(values)


def test_stack_outputs_helper_prints_the_environment_and_names_what_is_missing(mocked_stack):
    helper = [str(VENV_BIN / "python"), "-m", "infra_pulumi.stack_outputs"]
    printed = subprocess.run(
        helper, input=json.dumps(mocked_stack.outputs), capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    exported = subprocess.run(
        ["bash", "-c", printed.stdout + 'echo "$WALDINGER_CONTAINER_APP|$WALDINGER_AML_COMPUTE|$WALDINGER_ENV"'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.stdout.strip() == "waldinger-prod-serving-app|waldinger-batch|prod"

    incomplete = {key: value for key, value in mocked_stack.outputs.items() if key != "batchCompute"}
    failed = subprocess.run(
        [*helper, "--format", "dotenv"],
        input=json.dumps(incomplete),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert failed.returncode == 2
    assert "batchCompute" in failed.stderr and failed.stdout == ""
    not_json = subprocess.run(helper, input="oops", capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
