"""`waldinger serve` and the real-time deployment asset on the local environment: the endpoint serves the
production version, restarts when production changes (a rollback included), answers the official openai client,
and the check fails when the endpoint serves another version or was killed (re-materializing restores it)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

import psutil
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetSelection,
    Definitions,
    define_asset_job,
    materialize,
)

from resources.asset_values import LocalAssetValuesIOManager
from resources.model_registry import EmbeddedModelRegistryResource
from resources.model_registry.embedded import EmbeddedModelRegistry
from resources.model_source.tiny_model import TINY_MODEL_NAME, build_tiny_model
from resources.serving import LocalRealtimeEndpointResource, local_endpoint
from tests.helpers import waldinger_cli
from waldinger_assets.serving.assets import (
    SERVES_PRODUCTION_CHECK,
    endpoint_serves_production_version,
    realtime_deployment,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def registry_with_two_versions(tmp_path: Path):
    data_dir = tmp_path / "data"
    registry = EmbeddedModelRegistry(data_dir / "registry")
    first = build_tiny_model(tmp_path / "v1")
    second = tmp_path / "v2"
    shutil.copytree(first, second)
    config = json.loads((second / "config.json").read_text())
    config["rms_norm_eps"] = 2e-5  # other bytes: a new version
    (second / "config.json").write_text(json.dumps(config))
    v1, _ = registry.register(TINY_MODEL_NAME, first, tags={}, properties={})
    v2, _ = registry.register(TINY_MODEL_NAME, second, tags={}, properties={})
    yield data_dir, registry, v1, v2
    local_endpoint.stop(data_dir)


def serve(data_dir: Path, *args: str) -> dict:
    finished = waldinger_cli("serve", *args, "--json", env={"WALDINGER_DATA_DIR": str(data_dir)})
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def test_serve_start_status_restart_on_promotion_and_stop(registry_with_two_versions) -> None:
    from openai import OpenAI

    data_dir, registry, v1, v2 = registry_with_two_versions
    refused = waldinger_cli("serve", "start", env={"WALDINGER_DATA_DIR": str(data_dir)})
    assert refused.returncode == 2 and "waldinger model promote" in refused.stderr, "nothing in production yet"

    registry.promote(TINY_MODEL_NAME, v1.version)
    started = serve(data_dir, "start")
    assert started["running"] and started["version"] == v1.version and started["url"].endswith("/v1")
    assert serve(data_dir, "start")["pid"] == started["pid"], "same version: the running server is kept"

    client = OpenAI(base_url=started["url"], api_key="local", max_retries=0)
    reply = client.chat.completions.create(
        model=TINY_MODEL_NAME, messages=[{"role": "user", "content": "hello"}], max_tokens=4
    )
    assert reply.system_fingerprint == f"{TINY_MODEL_NAME}:{v1.version}"

    registry.promote(TINY_MODEL_NAME, v2.version)
    restarted = serve(data_dir, "start")
    assert restarted["version"] == v2.version and restarted["pid"] != started["pid"]
    assert restarted["url"] == started["url"], "clients keep their URL across versions"
    assert (
        json.loads(waldinger_cli("model", "rollback", "--json", env={"WALDINGER_DATA_DIR": str(data_dir)}).stdout)[
            "version"
        ]
        == v1.version
    )
    assert serve(data_dir, "start")["version"] == v1.version

    assert serve(data_dir, "stop") == {"stopped": True}
    assert serve(data_dir, "status")["running"] is False


def test_the_deployment_asset_serves_production_and_its_check_catches_a_stale_endpoint(
    registry_with_two_versions, tmp_path: Path
) -> None:
    data_dir, registry, v1, v2 = registry_with_two_versions
    registry.promote(TINY_MODEL_NAME, v1.version)
    resources = {
        "model_registry": EmbeddedModelRegistryResource(model_name=TINY_MODEL_NAME, root=str(data_dir / "registry")),
        "realtime_endpoint": LocalRealtimeEndpointResource(data_dir=str(data_dir), engine="transformers"),
        "io_manager": LocalAssetValuesIOManager(base_dir=str(tmp_path / "storage")),
    }
    definitions = Definitions(
        assets=[realtime_deployment],
        asset_checks=[endpoint_serves_production_version],
        jobs=[define_asset_job("check_endpoint", selection=AssetSelection.checks(endpoint_serves_production_version))],
        resources=resources,
    )
    result = materialize([realtime_deployment], resources=resources)
    assert result.success
    metadata = result.asset_materializations_for_node(realtime_deployment.op.name)[0].metadata
    assert metadata["version"].value == v1.version and metadata["url"].value.endswith("/v1")
    assert 0 < metadata["smoke_p50_ms"].value <= metadata["smoke_p99_ms"].value
    assert metadata["smoke_requests"].value == 8

    def check() -> AssetCheckEvaluation:
        result = definitions.resolve_job_def("check_endpoint").execute_in_process(raise_on_error=False)
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.check_name == SERVES_PRODUCTION_CHECK
        return evaluation

    def run_check() -> bool:
        return check().passed

    assert run_check() is True
    registry.promote(TINY_MODEL_NAME, v2.version)  # production moved on; the endpoint still serves v1
    assert run_check() is False
    assert materialize([realtime_deployment], resources=resources).success, "re-deploying restarts the endpoint"
    assert run_check() is True
    assert local_endpoint.status(data_dir).version == v2.version

    killed = local_endpoint.status(data_dir).pid
    os.kill(killed, signal.SIGKILL)  # the server dies: no clean shutdown, its state file stays behind
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(killed).wait(timeout=30)  # reaped: this process started it
    down = check()
    assert down.passed is False
    assert down.metadata["served_version"].value == "None"
    assert "materialize waldinger/serving/realtime_deployment" in down.description
    assert materialize([realtime_deployment], resources=resources).success, "re-materializing restores it"
    assert run_check() is True
    restored = local_endpoint.status(data_dir)
    assert restored.running and restored.pid != killed and restored.version == v2.version
