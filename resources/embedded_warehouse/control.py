"""Start, stop and inspect the embedded Snowflake server that runs in the background.

State lives in `<data_dir>/warehouse/`: `databases/` (DuckDB files), `server.json` (pid, host, port),
`server.log`, and `control.lock`, which serialises concurrent starts and stops (several Dagster processes may
ask for the warehouse at the same moment).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from resources.embedded_warehouse.server import HEALTH_PATH

HOST = "127.0.0.1"
# fakesnow accepts any credentials; these are what clients are told to use.
ACCOUNT = "waldinger"
USER = "waldinger"
PASSWORD = "embedded"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


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
            "login_timeout": 30,
            "network_timeout": 600,
        }


def warehouse_dir(data_dir: Path) -> Path:
    return data_dir / "warehouse"


def not_running_message(data_dir: Path) -> str:
    return (
        f"The embedded warehouse in {warehouse_dir(data_dir)} is not running. Start it with "
        "`waldinger warehouse start` (or `make demo`), then retry."
    )


def _state_file(data_dir: Path) -> Path:
    return warehouse_dir(data_dir) / "server.json"


def _log_file(data_dir: Path) -> Path:
    return warehouse_dir(data_dir) / "server.log"


@contextlib.contextmanager
def _control_lock(data_dir: Path) -> Iterator[None]:
    warehouse_dir(data_dir).mkdir(parents=True, exist_ok=True)
    with open(warehouse_dir(data_dir) / "control.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_state(data_dir: Path) -> dict | None:
    try:
        return json.loads(_state_file(data_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _health(host: str, port: int, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{HEALTH_PATH}", timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _is_warehouse_server(pid: int, data_dir: Path) -> bool:
    """True if `pid` is the embedded warehouse server of this data directory (not a reused pid)."""
    import psutil

    try:
        command_line = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "resources.embedded_warehouse.server" in command_line and str(warehouse_dir(data_dir)) in command_line


def status(data_dir: Path) -> WarehouseStatus:
    state = _read_state(data_dir) or {}
    pid, port = state.get("pid"), state.get("port")
    host = state.get("host", HOST)
    # A busy server can be slow to answer a health request, so liveness is decided by the process itself.
    running = bool(pid and port and _is_warehouse_server(pid, data_dir))
    return WarehouseStatus(
        running=running,
        host=host,
        port=port if running else None,
        account=ACCOUNT,
        user=USER,
        password=PASSWORD,
        pid=pid if running else None,
        data_dir=str(warehouse_dir(data_dir)),
        log_file=str(_log_file(data_dir)),
    )


def _free_port(host: str) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _log_tail(data_dir: Path, lines: int = 15) -> str:
    try:
        return "\n".join(_log_file(data_dir).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start(data_dir: Path, port: int | None = None, timeout_s: float = START_TIMEOUT_S) -> WarehouseStatus:
    """Starts the server in the background unless it already runs; returns once it answers."""
    with _control_lock(data_dir):
        current = status(data_dir)
        if current.running:
            return current
        port = port or _free_port(HOST)
        log = open(_log_file(data_dir), "ab")  # noqa: SIM115 - handed to the child process
        command = [
            sys.executable,
            "-m",
            "resources.embedded_warehouse.server",
            "--data-dir",
            str(warehouse_dir(data_dir)),
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        env = {**os.environ, "PYTHONPATH": _import_root() + os.pathsep + os.environ.get("PYTHONPATH", "")}
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the command (and the Dagster run) that started it
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise WarehouseError(
                    f"The embedded warehouse exited with code {process.returncode} while starting. "
                    f"Last lines of {_log_file(data_dir)}:\n{_log_tail(data_dir)}"
                )
            health = _health(HOST, port, timeout=1.0)
            if health and health.get("pid") == process.pid:
                _state_file(data_dir).write_text(
                    json.dumps({"pid": process.pid, "host": HOST, "port": port, "started_at": time.time()})
                )
                return status(data_dir)
            time.sleep(0.1)
        process.kill()
        raise WarehouseError(
            f"The embedded warehouse did not answer on {HOST}:{port} within {timeout_s:.0f}s. "
            f"Last lines of {_log_file(data_dir)}:\n{_log_tail(data_dir)}"
        )


def stop(data_dir: Path, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stops the server (it checkpoints its files first). Returns False if it was not running."""
    with _control_lock(data_dir):
        current = status(data_dir)
        if not current.running or current.pid is None:
            _state_file(data_dir).unlink(missing_ok=True)
            return False
        os.kill(current.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(current.pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(current.pid, os.WNOHANG)  # reap it if this process started it
            time.sleep(0.1)
        if _pid_alive(current.pid):
            os.kill(current.pid, signal.SIGKILL)  # DuckDB replays its write-ahead log on the next start
        _state_file(data_dir).unlink(missing_ok=True)
        return True


def ensure_running(data_dir: Path, port: int | None = None) -> WarehouseStatus:
    current = status(data_dir)
    return current if current.running else start(data_dir, port=port)


def _import_root() -> str:
    """The folder that holds the `resources` package, so the server starts from any working directory."""
    return str(Path(__file__).resolve().parents[2])
