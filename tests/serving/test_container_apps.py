"""The prod real-time deployment, at its boundaries: azure-mgmt-appcontainers runs for real against a fake of
the Container Apps endpoints (tests/fakes/container_apps.py) and the tests assert the REST requests it makes.
The container's entrypoint is tested in test_container_entrypoint.py."""

from __future__ import annotations

import hashlib
import json

import pytest

from resources.serving.container_apps import (
    ContainerAppsError,
    connect,
    deploy_version,
    revision_suffix,
    served_version,
)
from tests.fakes.azure_ml import RG, SUB, WS, FakeCredential, block_real_network
from tests.fakes.container_apps import ENV_DOMAIN, REVISION_SUFFIX, FakeContainerApps

APP = "waldinger-llm"
NAME = "mistral-7b-instruct"
IMAGE = "waldingeracr.azurecr.io/waldinger-serving:abc123"
SHA6 = hashlib.sha256(b"version 6").hexdigest()
SHA7 = hashlib.sha256(b"version 7").hexdigest()
SHA8 = hashlib.sha256(b"version 8").hexdigest()
HF_TOKEN_VALUE = "hf_only-the-service-knows-this-value"
MODEL_ENV = ("WALDINGER_MODEL_NAME", "WALDINGER_MODEL_VERSION", "WALDINGER_MODEL_URI", "WALDINGER_ARTIFACT_SHA256")


def vllm_container(version: str = "6", sha256: str = SHA6) -> dict:
    return {
        "name": "vllm",
        "image": IMAGE,
        "env": [
            {"name": "WALDINGER_MODEL_NAME", "value": NAME},
            {"name": "WALDINGER_MODEL_VERSION", "value": version},
            {"name": "WALDINGER_MODEL_URI", "value": f"azureml:{NAME}:{version}"},
            {"name": "WALDINGER_ARTIFACT_SHA256", "value": sha256},
            {"name": "AZURE_SUBSCRIPTION_ID", "value": SUB},
            {"name": "AZURE_RESOURCE_GROUP", "value": RG},
            {"name": "AZUREML_WORKSPACE", "value": WS},
            {"name": "WALDINGER_MAX_MODEL_LEN", "value": "8192"},
            {"name": "HF_TOKEN", "secretRef": "hf-token"},
        ],
        "resources": {"cpu": 24.0, "memory": "220Gi"},
        "probes": [{"type": "Readiness", "httpGet": {"path": "/health", "port": 8000}, "initialDelaySeconds": 60}],
    }


SIDECAR = {
    "name": "otel-collector",
    "image": "otel/opentelemetry-collector:0.100.0",
    "env": [{"name": "OTEL_LOG_LEVEL", "value": "info"}],
    "resources": {"cpu": 0.5, "memory": "1Gi"},
}


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch):
    block_real_network(monkeypatch)
    service = FakeContainerApps(polls_before_done=1)
    service.add_app(APP, [vllm_container(), SIDECAR], secrets=[{"name": "hf-token", "value": HF_TOKEN_VALUE}])
    credential = FakeCredential()
    # polling_interval=0: without a Retry-After header the SDK waits polling_interval (30 s) between polls.
    client = connect(SUB, credential=credential, transport=service, polling_interval=0)
    return client, service, credential


def deploy(client, version: str, sha256: str, **kwargs):
    return deploy_version(
        client,
        RG,
        APP,
        model_name=NAME,
        version=version,
        model_uri=f"azureml:{NAME}:{version}",
        sha256=sha256,
        **kwargs,
    )


def calls(service: FakeContainerApps) -> list[tuple[str, str]]:
    return [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in service.requests]


def patches(service: FakeContainerApps) -> list[dict]:
    return [r for r in service.requests if r["method"] == "PATCH"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: {k: v for k, v in e.items() if k != "name"} for e in container["env"]}


# --------------------------------------------------------------------------------------
# deploy_version and served_version, through the SDK against the fake service
# --------------------------------------------------------------------------------------
def test_a_new_version_patches_the_template_and_a_new_revision_serves_it(azure) -> None:
    client, service, credential = azure
    before = json.loads(json.dumps(service.app(APP)))

    deployment = deploy(client, "7", SHA7)

    assert calls(service) == [
        ("GET", APP),
        ("GET", "revisions"),
        ("PATCH", APP),
        ("GET", "00000001-0000-0000-0000-000000000000"),  # 202: still in progress
        ("GET", "00000001-0000-0000-0000-000000000000"),  # 200: done
        ("GET", APP),
    ]
    assert not any(r.get("unhandled") for r in service.requests)
    assert all(r["headers"]["Authorization"] == "Bearer fake-token" for r in service.requests)
    assert credential.scopes_requested[0] == ("https://management.azure.com/.default",)

    (patch,) = patches(service)
    assert patch["query"]["api-version"] == "2026-07-01"
    body = patch["json"]
    assert list(body) == ["properties"] and list(body["properties"]) == ["template"]  # secrets, ingress untouched
    template = body["properties"]["template"]
    assert template["revisionSuffix"] == f"v7-{SHA7[:8]}"
    assert template["scale"] == before["properties"]["template"]["scale"]
    assert template["scale"]["minReplicas"] == 0
    assert template["volumes"] == before["properties"]["template"]["volumes"]
    vllm, sidecar = template["containers"]
    assert sidecar == SIDECAR
    assert {k: v for k, v in vllm.items() if k != "env"} == {k: v for k, v in vllm_container().items() if k != "env"}
    env = env_of(vllm)
    assert {name: env[name]["value"] for name in MODEL_ENV} == {
        "WALDINGER_MODEL_NAME": NAME,
        "WALDINGER_MODEL_VERSION": "7",
        "WALDINGER_MODEL_URI": f"azureml:{NAME}:7",
        "WALDINGER_ARTIFACT_SHA256": SHA7,
    }
    unchanged = {k: v for k, v in env_of(vllm_container()).items() if k not in MODEL_ENV}
    assert {k: v for k, v in env.items() if k not in MODEL_ENV} == unchanged
    assert env["HF_TOKEN"] == {"secretRef": "hf-token"}

    revision = f"{APP}--v7-{SHA7[:8]}"
    assert deployment.updated
    assert deployment.revision == revision
    assert (deployment.version, deployment.sha256, deployment.model, deployment.image) == ("7", SHA7, NAME, IMAGE)
    assert deployment.url == f"https://{APP}.{ENV_DOMAIN}/v1" and deployment.fqdn == f"{APP}.{ENV_DOMAIN}"
    stored = service.app(APP)
    assert stored["properties"]["configuration"]["secrets"] == [{"name": "hf-token", "value": HF_TOKEN_VALUE}]
    assert stored["properties"]["template"]["scale"]["minReplicas"] == 0
    assert [r["name"] for r in service.revisions[(RG, APP)] if r["properties"]["active"]] == [revision]


def test_the_version_already_served_is_not_deployed_again(azure) -> None:
    client, service, _ = azure
    deployment = deploy(client, "6", SHA6)
    assert not deployment.updated
    assert (deployment.version, deployment.sha256, deployment.revision) == ("6", SHA6, f"{APP}--initial")
    assert calls(service) == [("GET", APP)]


def test_the_same_version_number_with_other_bytes_is_deployed(azure) -> None:
    client, service, _ = azure
    other = hashlib.sha256(b"version 6, rebuilt").hexdigest()
    deployment = deploy(client, "6", other)
    assert deployment.updated and deployment.revision == f"{APP}--v6-{other[:8]}"
    assert len(patches(service)) == 1


def test_serving_a_version_again_gets_a_revision_suffix_not_used_before(azure) -> None:
    client, service, _ = azure
    first = deploy(client, "7", SHA7)
    deploy(client, "8", SHA8)
    rollback = deploy(client, "7", SHA7)
    assert rollback.updated and rollback.version == "7"
    assert rollback.revision == f"{first.revision}-r2"
    assert [p["json"]["properties"]["template"]["revisionSuffix"] for p in patches(service)] == [
        f"v7-{SHA7[:8]}",
        f"v8-{SHA8[:8]}",
        f"v7-{SHA7[:8]}-r2",
    ]


def test_served_version_reads_back_what_was_deployed(azure) -> None:
    client, _, _ = azure
    assert served_version(client, RG, APP)["version"] == "6"
    deployment = deploy(client, "7", SHA7)
    assert served_version(client, RG, APP) == {
        "model": NAME,
        "version": "7",
        "sha256": SHA7,
        "revision": deployment.revision,
        "ready_revision": deployment.revision,
        "url": f"https://{APP}.{ENV_DOMAIN}/v1",
    }


def test_no_secret_value_is_sent_returned_or_put_in_an_error(azure) -> None:
    client, service, _ = azure
    deployment = deploy(client, "7", SHA7)
    sent = b"".join(r["body"] for r in service.requests)
    assert HF_TOKEN_VALUE.encode() not in sent
    assert HF_TOKEN_VALUE not in json.dumps(deployment.to_json())
    assert HF_TOKEN_VALUE not in json.dumps(served_version(client, RG, APP))
    assert "fake-token" not in json.dumps(deployment.to_json())


def test_an_unknown_app_says_how_to_create_it(azure) -> None:
    client, service, _ = azure
    with pytest.raises(ContainerAppsError) as error:
        deploy_version(client, RG, "nope", model_name=NAME, version="7", model_uri=f"azureml:{NAME}:7", sha256=SHA7)
    message = str(error.value)
    assert "Container App 'nope' not found in resource group 'rg'" in message
    assert "pulumi up" in message and "WALDINGER_CONTAINER_APP" in message
    assert not patches(service)
    with pytest.raises(ContainerAppsError, match="not found"):
        served_version(client, RG, "nope")


def test_a_missing_container_names_the_containers_there_are(azure) -> None:
    client, service, _ = azure
    with pytest.raises(ContainerAppsError) as error:
        deploy(client, "7", SHA7, container_name="server")
    assert "no container named 'server'" in str(error.value)
    assert "'vllm', 'otel-collector'" in str(error.value)
    assert not patches(service)


def test_an_app_whose_traffic_is_pinned_to_an_old_revision_is_not_updated(azure) -> None:
    client, service, _ = azure
    service.add_app(
        APP,
        [vllm_container()],
        revisions_mode="Multiple",
        traffic=[{"revisionName": f"{APP}--initial", "weight": 100}],
    )
    with pytest.raises(ContainerAppsError, match="latestRevision=true weight=100"):
        deploy(client, "7", SHA7)
    assert not patches(service)


def test_multiple_revision_mode_with_traffic_on_the_latest_revision_is_updated(azure) -> None:
    client, service, _ = azure
    service.add_app(APP, [vllm_container()], revisions_mode="Multiple")
    assert deploy(client, "7", SHA7).updated


def test_a_rejected_update_says_what_the_service_said(azure) -> None:
    client, service, _ = azure
    service.fail_patch = (409, "ContainerAppOperationInProgress", "Another operation is in progress.")
    with pytest.raises(ContainerAppsError) as error:
        deploy(client, "7", SHA7)
    assert "HTTP 409 ContainerAppOperationInProgress: Another operation is in progress." in str(error.value)
    assert "still serves what it served before" in str(error.value)
    assert service.app(APP)["properties"]["template"]["containers"][0] == vllm_container()


def test_an_update_that_did_not_create_the_revision_is_an_error(azure) -> None:
    client, service, _ = azure
    service.ignore_revision_suffix = True
    with pytest.raises(ContainerAppsError) as error:
        deploy(client, "7", SHA7)
    assert f"its latest revision is '{APP}--r0000002', not '{APP}--v7-{SHA7[:8]}'" in str(error.value)


# --------------------------------------------------------------------------------------
# Revision suffixes (pure)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "expected"),
    [("7", f"v7-{SHA7[:8]}"), ("1.2.0-RC_1", f"v1-2-0-rc-1-{SHA7[:8]}"), ("--x--", f"vx-{SHA7[:8]}")],
)
def test_revision_suffix_is_valid_for_container_apps(version: str, expected: str) -> None:
    suffix = revision_suffix(APP, version, SHA7)
    assert suffix == expected
    assert REVISION_SUFFIX.match(suffix)  # the service's naming rules, as the fake enforces them


def test_revision_suffix_fits_a_long_app_name_and_stays_unique() -> None:
    app = "a" * 32  # the longest Container App name
    first = revision_suffix(app, "20240501.1234567890", SHA7)
    assert len(f"{app}--{first}") <= 54 and first.endswith(SHA7[:8]) and first.startswith("v2024")
    second = revision_suffix(app, "20240501.1234567890", SHA7, (f"{app}--{first}",))
    assert second != first and len(f"{app}--{second}") <= 54 and second.endswith("-r2")


def test_revision_suffix_refuses_what_cannot_be_named() -> None:
    with pytest.raises(ContainerAppsError, match="too long"):
        revision_suffix("a" * 45, "7", SHA7)
    with pytest.raises(ContainerAppsError, match="not an artifact hash"):
        revision_suffix(APP, "7", "")
