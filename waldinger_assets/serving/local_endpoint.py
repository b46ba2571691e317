"""Start, stop and inspect the local real-time endpoint: a background OpenAI-compatible server
(waldinger_assets.serving.openai_server) for one registered model version.

State lives in `<data_dir>/serving/realtime/` (see resources.background_process). Starting it for another
version (or other bytes) restarts it; starting it for the version it already serves does nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from resources.background_process import HOST, BackgroundServer, free_port, get_json
from waldinger_assets.serving.deployment import DeploymentError, ServedArtifact

SERVER_MODULE = "waldinger_assets.serving.openai_server"
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


def start(
    data_dir: Path,
    artifact: ServedArtifact,
    port: int | None = None,
    engine: str = "auto",
    max_batch: int = 16,
    batch_window_ms: float = 5.0,
    timeout_s: float = START_TIMEOUT_S,
) -> tuple[EndpointStatus, bool]:
    """Serves `artifact`, restarting the endpoint if it serves something else. Returns the status and whether
    a server was (re)started."""
    server = _server(data_dir)
    with server.lock():
        state = server.running_state()
        if state and (state.get("model"), state.get("version"), state.get("sha256")) == (
            artifact.model,
            artifact.version,
            artifact.sha256,
        ):
            return status(data_dir), False
        if state:
            server.terminate()
        port = port or (state or {}).get("port") or free_port(HOST)

        def serves_the_version(pid: int) -> bool:
            health = get_json(f"http://{HOST}:{port}/health", timeout=1.0)
            return bool(health and health.get("pid") == pid and health.get("version") == artifact.version)

        arguments = [
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
            str(server.folder),
        ]
        recorded = {"model": artifact.model, "version": artifact.version, "sha256": artifact.sha256}
        spawned = server.spawn(arguments, port, serves_the_version, timeout_s, EndpointError, state=recorded)
        health = get_json(f"http://{HOST}:{port}/health") or {}
        server.write_state({**spawned, "engine": health.get("engine")})
    return status(data_dir), True


def stop(data_dir: Path) -> bool:
    """Stops the endpoint. Returns False if it was not running."""
    server = _server(data_dir)
    with server.lock():
        return server.terminate()
