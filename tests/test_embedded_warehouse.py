"""The embedded Snowflake: lifecycle through the CLI, persistence, many processes at once, clear errors."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
from pathlib import Path

import pytest
import snowflake.connector

from resources.embedded_warehouse import control
from resources.warehouse import embedded_warehouse
from tests.helpers import waldinger_cli

pytestmark = pytest.mark.slow


def connect(status: control.WarehouseStatus):
    return snowflake.connector.connect(**status.connection_args())


def test_cli_start_status_stop_and_json_contract(data_dir: Path) -> None:
    env = {"WALDINGER_DATA_DIR": str(data_dir)}
    started = waldinger_cli("warehouse", "start", "--json", env=env)
    assert started.returncode == 0, started.stderr
    status = json.loads(waldinger_cli("warehouse", "status", "--json", env=env).stdout)
    assert status["running"] is True
    assert {"running", "host", "port", "account", "user", "password"} <= status.keys()

    # Any Snowflake client can connect with nothing but the status JSON.
    with snowflake.connector.connect(
        account=status["account"],
        user=status["user"],
        password=status["password"],
        host=status["host"],
        port=status["port"],
        protocol="http",
    ) as connection:
        assert connection.cursor().execute("SELECT 40 + 2").fetchone() == (42,)

    assert json.loads(waldinger_cli("warehouse", "start", "--json", env=env).stdout)["pid"] == status["pid"]
    stopped = waldinger_cli("warehouse", "stop", "--json", env=env)
    assert json.loads(stopped.stdout) == {"stopped": True}
    assert json.loads(waldinger_cli("warehouse", "status", "--json", env=env).stdout)["running"] is False
    assert json.loads(waldinger_cli("warehouse", "stop", "--json", env=env).stdout) == {"stopped": False}


def _write_state(status: control.WarehouseStatus) -> None:
    with connect(status) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS KEEP")
        cursor.execute("CREATE SCHEMA IF NOT EXISTS KEEP.S")
        cursor.execute("CREATE TABLE KEEP.S.T (ID NUMBER(38,0), NOTE VARCHAR(100)) COMMENT = 'kept'")
        cursor.executemany("INSERT INTO KEEP.S.T (ID, NOTE) VALUES (%s, %s)", [(i, f"row {i}") for i in range(25)])


def _read_state(status: control.WarehouseStatus) -> tuple:
    with connect(status) as connection:
        cursor = connection.cursor()
        count = cursor.execute("SELECT COUNT(*), SUM(ID) FROM KEEP.S.T").fetchone()
        comment = cursor.execute("SELECT COMMENT FROM KEEP.INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = 'T'").fetchone()
        return count, comment


def test_state_survives_stop_and_start(data_dir: Path) -> None:
    _write_state(control.start(data_dir))
    assert control.stop(data_dir) is True
    assert _read_state(control.start(data_dir)) == ((25, 300), ("kept",))


def test_state_survives_a_killed_server(data_dir: Path) -> None:
    """A machine restart: the server dies without checkpointing; DuckDB replays its log on the next start."""
    first = control.start(data_dir)
    _write_state(first)
    os.kill(first.pid, signal.SIGKILL)
    os.waitpid(first.pid, 0)
    assert control.status(data_dir).running is False
    second = control.start(data_dir)
    assert second.pid != first.pid
    assert _read_state(second) == ((25, 300), ("kept",))


def _writer(args: tuple[dict, int]) -> int:
    connection_args, worker = args
    with snowflake.connector.connect(**connection_args) as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE TABLE PAR.S.OWN_{worker} (ID NUMBER(38,0))")
        for row in range(20):
            cursor.execute("INSERT INTO PAR.S.SHARED (WORKER, ROW_ID) VALUES (%s, %s)", (worker, row))
            cursor.execute(f"INSERT INTO PAR.S.OWN_{worker} (ID) VALUES (%s)", (row,))
        return cursor.execute(f"SELECT COUNT(*) FROM PAR.S.OWN_{worker}").fetchone()[0]


def _reader(args: tuple[dict, int]) -> int:
    connection_args, _ = args
    seen = 0
    with snowflake.connector.connect(**connection_args) as connection:
        cursor = connection.cursor()
        for _ in range(20):
            count = cursor.execute("SELECT COUNT(*) FROM PAR.S.SHARED").fetchone()[0]
            assert count >= seen, "a reader saw committed rows disappear"
            seen = count
    return seen


def test_parallel_writers_and_readers_in_separate_processes(data_dir: Path) -> None:
    status = control.start(data_dir)
    with connect(status) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE DATABASE PAR")
        cursor.execute("CREATE SCHEMA PAR.S")
        cursor.execute("CREATE TABLE PAR.S.SHARED (WORKER NUMBER(38,0), ROW_ID NUMBER(38,0))")
    writers, readers = 6, 3
    with multiprocessing.get_context("spawn").Pool(writers + readers) as pool:
        written = pool.map_async(_writer, [(status.connection_args(), w) for w in range(writers)])
        read = pool.map_async(_reader, [(status.connection_args(), r) for r in range(readers)])
        assert written.get(timeout=180) == [20] * writers
        assert all(0 <= seen <= writers * 20 for seen in read.get(timeout=180))
    with connect(status) as connection:
        rows = connection.cursor().execute(
            "SELECT WORKER, COUNT(*), COUNT(DISTINCT ROW_ID) FROM PAR.S.SHARED GROUP BY WORKER ORDER BY WORKER"
        )
        assert rows.fetchall() == [(w, 20, 20) for w in range(writers)]


def _ensure(data_dir: str) -> int:
    return control.ensure_running(Path(data_dir)).pid


def test_concurrent_starts_share_one_server(data_dir: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pids = pool.map(_ensure, [str(data_dir)] * 3)
    assert len(set(pids)) == 1
    assert control.status(data_dir).pid == pids[0]


def test_resource_starts_the_warehouse_when_it_is_not_running(data_dir: Path) -> None:
    assert control.status(data_dir).running is False
    with embedded_warehouse(data_dir).get_connection() as connection:
        assert connection.cursor().execute("SELECT 1").fetchone() == (1,)
    assert control.status(data_dir).running is True


def test_resource_without_autostart_says_how_to_start(data_dir: Path) -> None:
    with (
        pytest.raises(control.WarehouseError, match="waldinger warehouse start"),
        embedded_warehouse(data_dir, autostart=False).get_connection(),
    ):
        pass


def test_start_on_a_busy_port_fails_with_the_server_log(data_dir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind((control.HOST, 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(control.WarehouseError, match="exited with code") as error:
            control.start(data_dir, port=port, timeout_s=30)
    assert "address already in use" in str(error.value).lower()
    assert control.status(data_dir).running is False
