"""Background server processes the project starts and stops: the embedded warehouse and the local real-time
endpoint. One folder per server holds `server.json` (pid, host, port, ...), `server.log`, and `control.lock`,
which serialises concurrent starts and stops (several Dagster processes may ask for a server at the same moment).

A server counts as running when its recorded pid is alive AND that process's command line names this server's
module and folder, so a reused pid never passes for it.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 30.0


def import_root() -> str:
    """The folder that holds the project's packages, so a server starts from any working directory."""
    return str(Path(__file__).resolve().parents[1])


def free_port(host: str = HOST) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 2.0) -> dict | None:
    """The JSON body at `url`, or None when nothing answers there (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass(frozen=True)
class BackgroundServer:
    """One server process: `python -m <module> ... <folder> ...`, its state in `folder`."""

    folder: Path
    module: str
    label: str  # for messages, e.g. "embedded warehouse"

    @property
    def state_file(self) -> Path:
        return self.folder / "server.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "control.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def write_state(self, state: dict) -> None:
        temporary = self.state_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_file)

    def owns(self, pid: int | None) -> bool:
        """True if `pid` is this server (not a reused pid, not another folder's server)."""
        import psutil

        if not pid:
            return False
        try:
            command_line = psutil.Process(pid).cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        return self.module in command_line and str(self.folder) in command_line

    def running_state(self) -> dict | None:
        """The recorded state if the server runs. A busy server can be slow to answer a health request, so
        liveness is decided by the process itself."""
        state = self.read_state()
        return state if state.get("port") and self.owns(state.get("pid")) else None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def spawn(
        self,
        arguments: list[str],
        port: int,
        is_ready: Callable[[int], bool],
        timeout_s: float,
        error: type[Exception],
        state: dict | None = None,
        environment: dict[str, str | None] | None = None,
    ) -> dict:
        """Starts `python -m module *arguments` in its own session (it outlives the command, and the Dagster run,
        that started it) and waits until `is_ready(pid)`. Call with the lock held.

        `environment` sets (or, with None, removes) variables of the child's environment: the way to hand it a
        secret, since its command line is visible to every user of the machine (`ps`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        env = {**os.environ, "PYTHONPATH": import_root() + os.pathsep + os.environ.get("PYTHONPATH", "")}
        for name, value in (environment or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        process = subprocess.Popen(
            [sys.executable, "-m", self.module, *arguments],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise error(
                    f"The {self.label} exited with code {process.returncode} while starting. "
                    f"Last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if is_ready(process.pid):
                recorded = {"pid": process.pid, "host": HOST, "port": port, "started_at": time.time(), **(state or {})}
                self.write_state(recorded)
                return recorded
            time.sleep(0.1)
        process.kill()
        raise error(
            f"The {self.label} did not answer on {HOST}:{port} within {timeout_s:.0f}s. "
            f"Last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def terminate(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stops the server (SIGTERM, then SIGKILL after `timeout_s`). Returns False if it was not running.
        Call with the lock held."""
        state = self.running_state()
        if state is None:
            self.state_file.unlink(missing_ok=True)
            return False
        pid = state["pid"]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)
        return True
