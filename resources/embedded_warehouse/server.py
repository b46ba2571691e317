"""The embedded Snowflake: fakesnow's HTTP server (the real connector protocol) over DuckDB files on disk.

fakesnow's own server keeps everything in memory. This entry point gives its shared instance a database
directory, re-attaches every database file found there at start, and keeps fakesnow's global catalog
(table comments, users, stages) in a file too, so state survives stop/start and machine restarts. One
process owns the files; every Dagster run and step process talks to it over HTTP, which is what lets many
processes read and write at once (DuckDB allows one writing process per file).

Run by `resources.embedded_warehouse.control.start`, not by hand:
    python -m resources.embedded_warehouse.server --data-dir DIR --host 127.0.0.1 --port PORT
"""

from __future__ import annotations

import argparse
import os
from collections import OrderedDict
from pathlib import Path

from resources.snowflake_sql import quote_identifier  # DuckDB quotes identifiers the same way

HEALTH_PATH = "/waldinger/health"
GLOBAL_CATALOG_FILE = "_fs_global.duckdb"
# fakesnow keeps every query's result (for result-by-query-id lookups) for the life of the process; a server
# that runs for days would grow without bound, so only the most recent results are kept.
RESULTS_KEPT = 256


class RecentResults(OrderedDict):
    """A dict that forgets its oldest entries beyond `RESULTS_KEPT`."""

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        while len(self) > RESULTS_KEPT:
            self.popitem(last=False)


def open_persistent_instance(database_dir: Path):
    """A fakesnow instance whose databases and global catalog live in `database_dir`."""
    from fakesnow import info_schema
    from fakesnow.instance import GLOBAL_DATABASE_NAME, FakeSnow
    from fakesnow.transforms import show

    database_dir.mkdir(parents=True, exist_ok=True)
    instance = FakeSnow(db_path=database_dir)
    instance.results_cache = RecentResults()
    duck = instance.duck_conn
    global_file = str(database_dir / GLOBAL_CATALOG_FILE).replace("'", "''")
    duck.execute(f"DETACH {GLOBAL_DATABASE_NAME}")
    duck.execute(f"ATTACH '{global_file}' AS {GLOBAL_DATABASE_NAME}")
    duck.execute(info_schema.fs_global_creation_sql())
    duck.execute(show.fs_global_creation_sql())
    for database_file in sorted(database_dir.glob("*.db")):
        # connect() attaches the file and (re)creates fakesnow's per-database information schema views.
        instance.connect(database=database_file.stem).close()
    return instance


def attached_databases(instance) -> list[str]:
    rows = instance.duck_conn.execute(
        "SELECT database_name FROM duckdb_databases() WHERE NOT internal AND path IS NOT NULL"
    ).fetchall()
    return [name for (name,) in rows]


def answer_data_errors_like_snowflake() -> None:
    """fakesnow answers some DuckDB errors with HTTP 500, which the Snowflake connector retries until its
    network timeout (minutes of silence). Real Snowflake answers these as statement errors, so do the same:
    a NOT NULL or type violation fails the statement at once and the client can roll back."""
    import duckdb
    import snowflake.connector.errors
    from fakesnow.cursor import FakeSnowflakeCursor

    original = FakeSnowflakeCursor._execute
    as_statement_errors = {
        duckdb.ConstraintException: (100072, "22000"),  # NULL result in a non-nullable column
        duckdb.ConversionException: (100038, "22018"),  # numeric value is not recognized
        duckdb.TransactionException: (90105, "25000"),  # the transaction was aborted by an earlier error
    }

    def execute(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except tuple(as_statement_errors) as error:
            errno, sqlstate = next(v for k, v in as_statement_errors.items() if isinstance(error, k))
            message = str(error.args[0]).split("\n")[0]
            raise snowflake.connector.errors.ProgrammingError(msg=message, errno=errno, sqlstate=sqlstate) from error

    FakeSnowflakeCursor._execute = execute


def serve(data_dir: Path, host: str, port: int) -> None:
    import fakesnow.server as fakesnow_server
    import uvicorn
    from starlette.responses import JSONResponse

    answer_data_errors_like_snowflake()
    instance = open_persistent_instance(data_dir / "databases")
    fakesnow_server.shared_fs = instance

    async def health(_request):
        return JSONResponse({"ok": True, "pid": os.getpid(), "data_dir": str(data_dir)})

    fakesnow_server.app.add_route(HEALTH_PATH, health, methods=["GET"])
    server = uvicorn.Server(
        uvicorn.Config(fakesnow_server.app, host=host, port=port, log_level="warning", access_log=False)
    )
    try:
        server.run()  # returns after SIGTERM/SIGINT, once in-flight requests are done
    finally:
        # Fold the write-ahead logs into the database files so the next start opens them quickly.
        for name in attached_databases(instance):
            instance.duck_conn.execute(f"CHECKPOINT {quote_identifier(name)}")  # a name may hold a quote
        instance.duck_conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Embedded Snowflake server (fakesnow over DuckDB files).")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    serve(args.data_dir, args.host, args.port)


if __name__ == "__main__":
    main()
