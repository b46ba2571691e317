"""Start, stop and inspect the embedded Snowflake server that runs in the background.

State lives in `<data_dir>/warehouse/`: `databases/` (DuckDB files), `server.json` (pid, host, port),
`server.log`, and `control.lock` (see resources.background_process).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from resources.background_process import HOST, BackgroundServer, free_port, get_json
from resources.embedded_warehouse.server import HEALTH_PATH

# fakesnow accepts any credentials; these are what clients are told to use.
ACCOUNT = "waldinger"
USER = "waldinger"
PASSWORD = "embedded"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
NETWORK_TIMEOUT_S = 10


class WarehouseError(RuntimeError):
    """The embedded warehouse could not be started, reached or stopped; the message says what to do."""


@dataclass(frozen=True)
class WarehouseStatus:
    running: bool
    host: str
    port: int | None
    account: str
    user: str
    password: str
    pid: int | None
    data_dir: str
    log_file: str

    def to_json(self) -> dict:
        return asdict(self)

    def connection_args(self) -> dict:
        """Keyword arguments for `snowflake.connector.connect` that reach this server."""
        if not self.running or self.port is None:
            raise WarehouseError(not_running_message(Path(self.data_dir)))
        return {
            "account": self.account,
            "user": self.user,
            "password": self.password,
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            "login_timeout": 10,
            # How long the connector retries a failed request. The server is on loopback, so a failed request
            # means it is gone: with the connector's default a killed server hangs a step for 10 minutes (seen
            # here). Slow statements are unaffected (socket_timeout bounds a reply; a statement is not resent).
            "network_timeout": NETWORK_TIMEOUT_S,
        }


def warehouse_dir(data_dir: Path) -> Path:
    return data_dir / "warehouse"


def not_running_message(data_dir: Path) -> str:
    return (
        f"The embedded warehouse in {warehouse_dir(data_dir)} is not running. Start it with "
        "`waldinger warehouse start` (or `make demo`), then retry."
    )


def died_message(log_file: str, pid: int | None, restarted: bool, error: Exception) -> str:
    """What a step says when the server it was using stopped under it."""
    cause = str(error).splitlines()[0][:120]
    return (
        f"The embedded warehouse (pid {pid}) stopped while this step was connecting to it or using it ({cause}). "
        "The interrupted transaction was not committed, so no partial write is left. "
        + ("It has been started again since. " if restarted else "")
        + f"Its log: {log_file}. Retry the step (the batch assets retry by "
        "themselves with backoff); if it keeps stopping, read the log, then `waldinger warehouse start`."
    )


def _server(data_dir: Path) -> BackgroundServer:
    return BackgroundServer(warehouse_dir(data_dir), "resources.embedded_warehouse.server", "embedded warehouse")


def status(data_dir: Path) -> WarehouseStatus:
    server = _server(data_dir)
    state = server.running_state()
    return WarehouseStatus(
        running=state is not None,
        host=(state or {}).get("host", HOST),
        port=state["port"] if state else None,
        account=ACCOUNT,
        user=USER,
        password=PASSWORD,
        pid=state["pid"] if state else None,
        data_dir=str(server.folder),
        log_file=str(server.log_file),
    )


def start(data_dir: Path, port: int | None = None, timeout_s: float = START_TIMEOUT_S) -> WarehouseStatus:
    """Starts the server in the background unless it already runs; returns once it answers."""
    server = _server(data_dir)
    with server.lock():
        if server.running_state() is not None:
            return status(data_dir)
        port = port or free_port(HOST)

        def answers(pid: int) -> bool:
            health = get_json(f"http://{HOST}:{port}{HEALTH_PATH}", timeout=1.0)
            return bool(health and health.get("pid") == pid)

        arguments = ["--data-dir", str(server.folder), "--host", HOST, "--port", str(port)]
        server.spawn(arguments, port, answers, timeout_s, WarehouseError)
    return status(data_dir)


def stop(data_dir: Path, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stops the server (it checkpoints its files first; after a SIGKILL DuckDB replays its write-ahead log on
    the next start). Returns False if it was not running."""
    server = _server(data_dir)
    with server.lock():
        return server.terminate(timeout_s)


def ensure_running(data_dir: Path, port: int | None = None) -> WarehouseStatus:
    current = status(data_dir)
    return current if current.running else start(data_dir, port=port)
