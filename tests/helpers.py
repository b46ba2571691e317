"""Helpers the tests share: running the project's commands the way a user does."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
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
