"""Shared fixtures. Every test runs against its own data directory, never the developer's `.waldinger/`,
and every warehouse a test starts is stopped when it ends."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SESSION_ROOT = Path(tempfile.mkdtemp(prefix="waldinger-tests-"))

# Dagster maps SIGTERM to whatever SIGINT does while it executes in process (dagster._utils.interrupts). Started
# in the background (nohup, `&`, an xdist worker) SIGINT is ignored, so SIGTERM became ignored too, and every
# process the suite then started inherited that: multiprocessing pools could not be terminated and hung the
# suite. Ctrl-C behaves as usual.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Settings from the developer's shell must not leak into the suite (prod credentials above all).
for _name in list(os.environ):
    if _name.startswith(("WALDINGER_", "SNOWFLAKE_", "AZURE_")):
        del os.environ[_name]
os.environ["WALDINGER_DATA_DIR"] = str(SESSION_ROOT / "default")
# Step retries keep their count (3) but wait about 1 s, 3 s, 7 s instead of 10 s, 30 s, 70 s.
os.environ["WALDINGER_STEP_RETRY_DELAY_S"] = "1"
os.environ["DAGSTER_HOME"] = str(SESSION_ROOT / "dagster_home")
Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
(Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").touch()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh, empty data directory; any warehouse started in it is stopped afterwards."""
    from resources.embedded_warehouse import control

    directory = tmp_path / "data"
    directory.mkdir()
    yield directory
    control.stop(directory)


@pytest.fixture(scope="session")
def seeded_data_dir() -> Iterator[Path]:
    """A data directory whose embedded warehouse holds the full demo seed (seeded once per test process, so once
    per xdist worker that runs a test using it, for the day the session started: SESSION_TODAY, so a suite that
    runs past midnight UTC sees the same days). Its tests leave it as they found it."""
    from resources.embedded_warehouse import control
    from resources.warehouse import embedded_warehouse
    from tests.helpers import SESSION_TODAY
    from waldinger_assets.demo_warehouse.seed import seed

    directory = SESSION_ROOT / "seeded"
    directory.mkdir()
    control.start(directory)
    seed(embedded_warehouse(directory).get_connection, today=SESSION_TODAY)
    yield directory
    control.stop(directory)


@pytest.fixture(scope="session", autouse=True)
def _remove_session_root() -> Iterator[None]:
    yield
    from resources.embedded_warehouse import control

    control.stop(SESSION_ROOT / "default")
    shutil.rmtree(SESSION_ROOT, ignore_errors=True)
