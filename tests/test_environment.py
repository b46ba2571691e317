"""The one environment switch: local by default, prod fails at load naming what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import EnvVar

from resources import build_resources, environment
from resources.model_registry import AzureMLModelRegistryResource
from resources.serving import AzureMLBatchComputeResource, ContainerAppsRealtimeResource
from resources.warehouse import EmbeddedWarehouseResource, SnowflakeWarehouseResource
from tests.helpers import waldinger_cli

PROD_SNOWFLAKE = {
    "WALDINGER_ENV": "prod",
    "SNOWFLAKE_ACCOUNT": "acme-xy12345",
    "SNOWFLAKE_USER": "WALDINGER_SVC",
    "SNOWFLAKE_ROLE": "WALDINGER_PIPELINE",
    "SNOWFLAKE_WAREHOUSE": "WALDINGER_WH",
    "WALDINGER_DATABASES": "RAW,ANALYTICS",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_RESOURCE_GROUP": "rg-waldinger-prod",
    "AZUREML_WORKSPACE": "mlw-waldinger-prod",
    "WALDINGER_MODEL_HF_ID": "mistralai/Mistral-7B-Instruct-v0.3",
    "WALDINGER_CONTAINER_APP": "ca-waldinger-llm",
    "WALDINGER_PIPES_STORAGE_ACCOUNT_URL": "https://stwaldinger.blob.core.windows.net",
    "WALDINGER_IO_ADLS2_ACCOUNT": "stwaldingerio",
}


def test_local_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALDINGER_ENV", raising=False)
    assert environment.current_environment() is environment.Environment.LOCAL
    assert isinstance(build_resources()["warehouse"], EmbeddedWarehouseResource)
    assert environment.configured_databases() == environment.LOCAL_DATABASES


def test_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALDINGER_ENV", "staging")
    with pytest.raises(environment.SettingsError, match=r"'local'.*'prod'"):
        build_resources()


def test_prod_without_settings_names_every_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALDINGER_ENV", "prod")
    with pytest.raises(environment.SettingsError) as error:
        build_resources()
    message = str(error.value)
    for name in (
        "SNOWFLAKE_ACCOUNT",
        "SNOWFLAKE_USER",
        "SNOWFLAKE_ROLE",
        "SNOWFLAKE_WAREHOUSE",
        "SNOWFLAKE_PRIVATE_KEY_PATH",
        "WALDINGER_CONTAINER_APP",
        "WALDINGER_PIPES_STORAGE_ACCOUNT_URL",
    ):
        assert name in message


def test_prod_key_path_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in PROD_SNOWFLAKE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_PATH", str(tmp_path / "missing.p8"))
    with pytest.raises(environment.SettingsError, match="SNOWFLAKE_PRIVATE_KEY_PATH"):
        build_resources()


def test_prod_uses_key_pair_auth_from_env_vars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "rsa_key.p8"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n")
    for name, value in PROD_SNOWFLAKE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_PATH", str(key))
    snowflake = build_resources()["warehouse"]
    assert isinstance(snowflake, SnowflakeWarehouseResource)
    # The definitions hold the variables' names, not their values: nothing secret in run config or the UI.
    assert isinstance(snowflake.private_key_path, EnvVar) and snowflake.private_key_path == "SNOWFLAKE_PRIVATE_KEY_PATH"
    resolved = snowflake.process_config_and_initialize()
    assert resolved.account == "acme-xy12345"
    registry = build_resources()["model_registry"]
    assert isinstance(registry, AzureMLModelRegistryResource) and registry.model_name == "mistral-7b-instruct"
    # What the connection is made with: dagster-snowflake's resource, with the key file and no password.
    connector = resolved.snowflake_resource()
    assert connector.private_key_path == str(key) and connector.password is None
    # Both deployments go to Azure, with the subscription as a variable name too.
    resources = build_resources()
    realtime, batch = resources["realtime_endpoint"], resources["batch_compute"]
    assert isinstance(realtime, ContainerAppsRealtimeResource) and realtime.app_name == "ca-waldinger-llm"
    assert isinstance(batch, AzureMLBatchComputeResource) and batch.compute == "waldinger-batch"
    assert batch.subscription_id == "AZURE_SUBSCRIPTION_ID" and isinstance(batch.subscription_id, EnvVar)
    assert batch.environment == "waldinger-serving@latest" and batch.pipes_container == "dagster-pipes"
    # The endpoint's bearer key: none unless set, then by variable name only.
    assert realtime.api_key is None
    monkeypatch.setenv("WALDINGER_SERVING_API_KEY", "sk-secret-serving-key")
    realtime = build_resources()["realtime_endpoint"]
    assert isinstance(realtime.api_key, EnvVar) and realtime.api_key == "WALDINGER_SERVING_API_KEY"
    assert realtime.process_config_and_initialize().api_key == "sk-secret-serving-key"


def test_prod_needs_the_databases_to_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALDINGER_ENV", "prod")
    monkeypatch.delenv("WALDINGER_DATABASES", raising=False)
    with pytest.raises(environment.SettingsError, match="WALDINGER_DATABASES"):
        environment.configured_databases()
    monkeypatch.setenv("WALDINGER_DATABASES", "RAW, ANALYTICS")
    assert environment.configured_databases() == ("RAW", "ANALYTICS")


def test_prod_takes_exactly_one_model_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALDINGER_ENV", "prod")
    monkeypatch.setenv("WALDINGER_MODEL_PATH", "/models/mistral")
    monkeypatch.setenv("WALDINGER_MODEL_HF_ID", "mistralai/Mistral-7B-Instruct-v0.3")
    with pytest.raises(environment.SettingsError, match="only one model source"):
        environment.model_source()
    monkeypatch.delenv("WALDINGER_MODEL_HF_ID")
    assert environment.model_source() == environment.ModelSourceSetting("path", "/models/mistral")


def test_seed_refuses_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    result = waldinger_cli("warehouse", "seed", env={"WALDINGER_ENV": "prod"})
    assert result.returncode == 2
    assert "embedded warehouse" in result.stderr and "WALDINGER_ENV" in result.stderr
    assert "Traceback" not in result.stderr
