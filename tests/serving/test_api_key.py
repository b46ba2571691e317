"""The real-time endpoint's API key, locally as in prod: with WALDINGER_SERVING_API_KEY set, /v1/* needs
`Authorization: Bearer <key>` (401 and an OpenAI-style error otherwise), /health and /metrics stay open like
vLLM's, the key reaches the server process through its environment (never its command line), and the
realtime_deployment asset's smoke test sends it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from dagster import EnvVar, materialize

from resources.asset_values import LocalAssetValuesIOManager
from resources.model_registry import EmbeddedModelRegistryResource
from resources.model_registry.embedded import EmbeddedModelRegistry
from resources.model_source.tiny_model import TINY_MODEL_NAME, build_tiny_model
from resources.serving import LocalRealtimeEndpointResource, local_endpoint, realtime_deployment_resource
from tests.helpers import serving_in_a_thread, waldinger_cli
from waldinger_assets.serving.assets import realtime_deployment
from waldinger_runtime.engine import TransformersEngine
from waldinger_runtime.openai_server import create_app

KEY = "sk-test-serving-key-3f9a1c"


def request(url: str, api_key: str | None = None, body: dict | None = None) -> tuple[int, dict | str]:
    headers = {"Content-Type": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=60) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = TransformersEngine(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))
    with serving_in_a_thread(create_app(engine, TINY_MODEL_NAME, "1", api_key=KEY)) as url:
        yield url


CHAT = {"model": TINY_MODEL_NAME, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 3}


@pytest.mark.parametrize("api_key", [None, "", "sk-wrong-key", KEY + "x", KEY[:-1], KEY.upper()])
@pytest.mark.parametrize(("path", "body"), [("/v1/models", None), ("/v1/chat/completions", CHAT), ("/v1/nope", None)])
def test_v1_without_the_right_key_is_401(keyed_url: str, api_key: str | None, path: str, body: dict | None) -> None:
    status, answer = request(keyed_url + path, api_key, body)
    assert status == 401
    assert answer["error"]["code"] == "invalid_api_key" and answer["error"]["type"] == "invalid_request_error"
    assert KEY not in json.dumps(answer)


def test_v1_with_the_key_answers_and_the_official_client_sends_it(keyed_url: str) -> None:
    from openai import AuthenticationError, OpenAI

    status, answer = request(keyed_url + "/v1/chat/completions", KEY, CHAT)
    assert status == 200 and answer["choices"][0]["message"]["role"] == "assistant"
    assert request(keyed_url + "/v1/models", f"  {KEY}  ")[0] == 200, "whitespace around the token is tolerated"
    client = OpenAI(base_url=f"{keyed_url}/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list().data] == [TINY_MODEL_NAME]
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{keyed_url}/v1", api_key="sk-wrong", max_retries=0).models.list()


def test_health_and_metrics_stay_open(keyed_url: str) -> None:
    status, health = request(keyed_url + "/health")
    assert status == 200 and health["model"] == TINY_MODEL_NAME
    status, metrics = request(keyed_url + "/metrics")
    assert status == 200 and "vllm:num_requests_running" in metrics


def test_an_empty_key_is_refused_rather_than_letting_everyone_in() -> None:
    from waldinger_runtime.openai_server import BearerKeyMiddleware

    with pytest.raises(ValueError, match="empty API key"):
        BearerKeyMiddleware(app=None, api_key="")


def test_the_local_resource_takes_the_key_as_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    assert realtime_deployment_resource().api_key is None
    monkeypatch.setenv("WALDINGER_SERVING_API_KEY", KEY)
    resource = realtime_deployment_resource()
    assert isinstance(resource, LocalRealtimeEndpointResource)
    assert isinstance(resource.api_key, EnvVar) and resource.api_key == "WALDINGER_SERVING_API_KEY"
    assert resource.process_config_and_initialize().api_key == KEY


@pytest.fixture
def promoted(tmp_path: Path) -> Iterator[Path]:
    data_dir = tmp_path / "data"
    registry = EmbeddedModelRegistry(data_dir / "registry")
    version, _ = registry.register(TINY_MODEL_NAME, build_tiny_model(tmp_path / "v1"), tags={}, properties={})
    registry.promote(TINY_MODEL_NAME, version.version)
    yield data_dir
    local_endpoint.stop(data_dir)


@pytest.mark.slow
def test_serve_start_hands_the_key_through_the_environment_and_the_asset_sends_it(
    promoted: Path, tmp_path: Path
) -> None:
    env = {"WALDINGER_DATA_DIR": str(promoted), "WALDINGER_ENGINE": "transformers"}
    started = waldinger_cli("serve", "start", "--json", env={**env, "WALDINGER_SERVING_API_KEY": KEY})
    assert started.returncode == 0, started.stderr
    status = json.loads(started.stdout)
    assert KEY not in started.stdout + started.stderr
    base = status["url"].removesuffix("/v1")
    assert request(base + "/v1/models")[0] == 401
    assert request(base + "/v1/models", KEY)[0] == 200
    assert request(base + "/health")[0] == 200
    server = psutil.Process(status["pid"])
    assert not any(KEY in part for part in server.cmdline()), "the key is not on the command line"
    assert server.environ().get("WALDINGER_SERVING_API_KEY") == KEY, "it came through the environment"

    # The deployment asset sends the key with every smoke request, and keeps the server that enforces it.
    resources = {
        "model_registry": EmbeddedModelRegistryResource(model_name=TINY_MODEL_NAME, root=str(promoted / "registry")),
        "realtime_endpoint": LocalRealtimeEndpointResource(data_dir=str(promoted), engine="transformers", api_key=KEY),
        "io_manager": LocalAssetValuesIOManager(base_dir=str(tmp_path / "storage")),
    }
    result = materialize([realtime_deployment], resources=resources, raise_on_error=False)
    assert result.success
    metadata = result.asset_materializations_for_node(realtime_deployment.op.name)[0].metadata
    assert metadata["smoke_requests"].value == 8 and metadata["updated"].value is False

    # Started again without a key, the endpoint that enforces one is replaced by an open one.
    reopened = waldinger_cli("serve", "start", "--json", env=env)
    assert reopened.returncode == 0, reopened.stderr
    assert json.loads(reopened.stdout)["pid"] != status["pid"]
    assert request(base + "/v1/models")[0] == 200
