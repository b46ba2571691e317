"""Helpers the tests share: running the project's commands the way a user does."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The UTC day the session started: the session's seeded warehouse holds prompts up to it, even past midnight.
SESSION_TODAY = dt.datetime.now(dt.UTC).date()


def waldinger_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs the installed `waldinger` console script the way a user does."""
    executable = VENV_BIN / "waldinger"
    return subprocess.run(
        [str(executable), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )


def instance_env(root: Path, **overrides: str) -> dict[str, str]:
    """The environment of the project's commands on a temporary instance under `root`: its own DAGSTER_HOME,
    data directory, baseline, schema history and storage; the WALDINGER database only; the transformers engine."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "WALDINGER_DATA_DIR": str(root / "data"),
        "WALDINGER_DATABASES": "WALDINGER",
        "WALDINGER_BASELINE": str(root / "baseline.json"),
        "WALDINGER_SCHEMA_HISTORY_DIR": str(root / "history"),
        "WALDINGER_STORAGE_DIR": str(root / "storage"),
        "WALDINGER_ENGINE": "transformers",
        **overrides,
    }


def step_failure_messages(result) -> str:
    """Every step failure's message of an in-process run, with its causes' (the project's error is a cause)."""
    messages = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)


@contextmanager
def serving_in_a_thread(app) -> Iterator[str]:
    """Serves an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
