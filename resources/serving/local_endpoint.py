"""Start, stop and inspect the local real-time endpoint: a background OpenAI-compatible server
(waldinger_runtime.openai_server) for one registered model version.

State lives in `<data_dir>/serving/realtime/` (see resources.background_process). Starting it for another
version (or other bytes) restarts it; starting it for the version it already serves does nothing.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from resources.background_process import HOST, BackgroundServer, free_port, get_json
from resources.environment import SERVING_API_KEY_VARIABLE
from resources.serving.artifacts import DeploymentError, ServedArtifact

SERVER_MODULE = "waldinger_runtime.openai_server"
# Loading torch and the model dominates; a 7B model on a GPU takes minutes.
START_TIMEOUT_S = 300.0


class EndpointError(DeploymentError):
    """The local endpoint could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class EndpointStatus:
    running: bool
    url: str | None  # the OpenAI API's base URL, ending in /v1
    model: str | None
    version: str | None
    sha256: str | None
    engine: str | None
    pid: int | None
    port: int | None
    log_file: str

    def to_json(self) -> dict:
        return asdict(self)


def endpoint_dir(data_dir: Path) -> Path:
    return data_dir / "serving" / "realtime"


def _server(data_dir: Path) -> BackgroundServer:
    return BackgroundServer(endpoint_dir(data_dir), SERVER_MODULE, "local real-time endpoint")


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}/v1"


def _answers(port: int, api_key: str | None) -> int | None:
    """The HTTP status of GET /v1/models with this key (or none), or None when the server does not answer."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(f"http://{HOST}:{port}/v1/models", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def enforces_key(port: int, api_key: str | None) -> bool:
    """Whether the server on `port` lets in exactly the holders of `api_key` (everyone, when it is None). A
    server too busy to answer counts as enforcing it: it is not restarted for a doubt."""
    with_key = _answers(port, api_key)
    if with_key == 401:
        return False
    if api_key is None or with_key is None:
        return True
    return _answers(port, None) in (401, None)


def status(data_dir: Path) -> EndpointStatus:
    server = _server(data_dir)
    state = server.running_state() or {}
    running = bool(state)
    return EndpointStatus(
        running=running,
        url=base_url(state["port"]) if running else None,
        model=state.get("model"),
        version=state.get("version"),
        sha256=state.get("sha256"),
        engine=state.get("engine"),
        pid=state.get("pid"),
        port=state.get("port"),
        log_file=str(server.log_file),
    )


def _serves(state: dict | None, artifact: ServedArtifact, api_key: str | None) -> bool:
    """Whether the running server (its recorded `state`) serves exactly `artifact` and enforces `api_key`."""
    return bool(
        state
        and (state.get("model"), state.get("version"), state.get("sha256"))
        == (artifact.model, artifact.version, artifact.sha256)
        and enforces_key(state["port"], api_key)
    )


def _server_arguments(
    artifact: ServedArtifact, port: int, engine: str, max_batch: int, batch_window_ms: float, instance_dir: Path
) -> list[str]:
    """The command line of waldinger_runtime.openai_server for `artifact` (never the key: argv is public)."""
    return [
        "--artifact",
        str(artifact.path),  # local files: see production_artifact(with_local_files=True)
        "--model",
        artifact.model,
        "--version",
        artifact.version,
        "--host",
        HOST,
        "--port",
        str(port),
        "--engine",
        engine,
        "--max-batch",
        str(max_batch),
        "--batch-window-ms",
        str(batch_window_ms),
        "--instance-dir",
        str(instance_dir),
    ]


def _serves_the_version(port: int, version: str) -> Callable[[int], bool]:
    """The readiness test of a started server: process `pid` answers /health on `port` for `version`."""

    def ready(pid: int) -> bool:
        health = get_json(f"http://{HOST}:{port}/health", timeout=1.0)
        return bool(health and health.get("pid") == pid and health.get("version") == version)

    return ready


def start(
    data_dir: Path,
    artifact: ServedArtifact,
    port: int | None = None,
    engine: str = "auto",
    max_batch: int = 16,
    batch_window_ms: float = 5.0,
    timeout_s: float = START_TIMEOUT_S,
    api_key: str | None = None,
) -> tuple[EndpointStatus, bool]:
    """Serves `artifact`, restarting the endpoint if it serves something else or does not enforce `api_key`
    (the bearer key its /v1 API requires; None for an open endpoint). Returns the status and whether a server
    was (re)started."""
    server = _server(data_dir)
    with server.lock():
        state = server.running_state()
        if _serves(state, artifact, api_key):
            return status(data_dir), False
        if state:
            server.terminate()
        port = port or (state or {}).get("port") or free_port(HOST)
        arguments = _server_arguments(artifact, port, engine, max_batch, batch_window_ms, server.folder)
        recorded = {"model": artifact.model, "version": artifact.version, "sha256": artifact.sha256}
        # The key goes through the environment (argv is public); without one, an inherited key is removed, so the
        # server enforces exactly what the caller asked for.
        spawned = server.spawn(
            arguments,
            port,
            _serves_the_version(port, artifact.version),
            timeout_s,
            EndpointError,
            state=recorded,
            environment={SERVING_API_KEY_VARIABLE: api_key},
        )
        health = get_json(f"http://{HOST}:{port}/health") or {}
        server.write_state({**spawned, "engine": health.get("engine")})
    return status(data_dir), True


def stop(data_dir: Path) -> bool:
    """Stops the endpoint. Returns False if it was not running."""
    server = _server(data_dir)
    with server.lock():
        return server.terminate()
