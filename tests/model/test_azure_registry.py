"""The Azure ML registry path, at its HTTP boundary: azure-ai-ml runs for real against a fake of Azure's
endpoints (tests/fakes/azure_ml.py), and the tests assert the REST requests it makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources.model_registry.azure import AzureMLModelRegistry
from resources.model_registry.embedded import PRODUCTION, SHA256_TAG, RegistryError
from resources.model_source.tiny_model import build_tiny_model
from tests.fakes.azure_ml import (
    RG,
    SUB,
    WS,
    FakeCredential,
    FakeTransport,
    block_real_network,
    install_routes,
    patch_blob_storage,
)

NAME = "mistral-7b-instruct"
TAGS = {"source": "hf:mistralai/Mistral-7B-Instruct-v0.3", "code_version": "abc123", "dagster_run_id": "run-1"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    block_real_network(monkeypatch)
    transport = FakeTransport()
    install_routes(transport)
    patch_blob_storage(transport, monkeypatch)
    registry = AzureMLModelRegistry.connect(
        subscription_id=SUB,
        resource_group=RG,
        workspace=WS,
        download_dir=tmp_path / "downloads",
        credential=FakeCredential(),
        transport=transport,
    )
    return registry, transport


def version_puts(transport: FakeTransport) -> list[dict]:
    return [r for r in transport.requests if r["method"] == "PUT" and "/models/" in r["path"]]


def test_registration_uploads_the_artifact_and_puts_a_version_with_tags_and_properties(azure, tiny_model) -> None:
    registry, transport = azure
    version, created = registry.register(NAME, tiny_model, TAGS, {"format": "transformers"})
    assert created and version.version == "1"

    (put,) = version_puts(transport)
    assert put["path"].endswith(f"/workspaces/{WS}/models/{NAME}/versions/1")
    body = put["json"]["properties"]
    assert body["modelType"] == "custom_model"
    assert body["tags"] == {**TAGS, SHA256_TAG: version.sha256}
    assert body["properties"] == {"format": "transformers"}
    assert body["modelUri"].startswith(f"azureml://subscriptions/{SUB}/resourcegroups/{RG}/workspaces/{WS}/datastores/")
    uploaded = {
        r["path"].rsplit("/", 1)[-1]
        for r in transport.requests
        if r["host"].endswith("blob.core.windows.net") and r["method"] == "PUT"
    }
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= uploaded
    assert all(
        r["headers"].get("Authorization", "").startswith("Bearer ")
        for r in transport.requests
        if r["host"] == "management.azure.com"
    )


def test_registering_the_same_bytes_again_creates_no_version(azure, tiny_model) -> None:
    registry, transport = azure
    first, _ = registry.register(NAME, tiny_model, TAGS, {})
    again, created = registry.register(NAME, tiny_model, {**TAGS, "dagster_run_id": "run-2"}, {})
    assert not created and again.version == first.version
    assert len(version_puts(transport)) == 1
    assert [v.version for v in registry.list_versions(NAME)] == ["1"]


def test_a_failed_version_put_leaves_no_version(azure, tiny_model) -> None:
    from azure.core.exceptions import HttpResponseError

    registry, transport = azure
    transport.fail_model_put = True
    with pytest.raises(HttpResponseError):
        registry.register(NAME, tiny_model, TAGS, {})
    assert registry.list_versions(NAME) == []


def test_promotion_sets_the_stage_and_rollback_returns_to_the_previous_version(azure, tiny_model, tmp_path) -> None:
    import json
    import shutil

    registry, transport = azure
    registry.register(NAME, tiny_model, TAGS, {})
    changed = Path(shutil.copytree(tiny_model, tmp_path / "v2"))
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-6}))
    registry.register(NAME, changed, TAGS, {})

    registry.promote(NAME, "1", run_id="run-a")
    registry.promote(NAME, "2", run_id="run-b")
    stages = {r["path"].rsplit("/", 1)[-1]: r["json"]["properties"].get("stage") for r in version_puts(transport)[-2:]}
    assert stages == {"1": "Development", "2": PRODUCTION}
    assert registry.production(NAME).version == "2"
    assert registry.production(NAME).tags["promoted_by_run"] == "run-b"

    assert registry.rollback(NAME, run_id="run-c").version == "1"
    assert registry.production(NAME).version == "1"
    with pytest.raises(RegistryError, match="no version '7'"):
        registry.get(NAME, "7")
