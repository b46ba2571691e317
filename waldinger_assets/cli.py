"""The `waldinger` command line (see README and ../shared/DESIGN.md for the contract).

Exit codes: 0 success, 2 error (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

EXIT_OK = 0
EXIT_ERROR = 2


def _print_status(status, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status.to_json(), indent=2))
    elif status.running:
        print(
            f"embedded warehouse running: snowflake://{status.user}@{status.host}:{status.port} "
            f"(account {status.account}, pid {status.pid}, data in {status.data_dir})"
        )
    else:
        print(f"embedded warehouse not running (data in {status.data_dir}); start it with `waldinger warehouse start`")


def _warehouse(args: argparse.Namespace) -> int:
    from resources import environment
    from resources.embedded_warehouse import control

    if environment.current_environment() is not environment.Environment.LOCAL:
        raise environment.SettingsError(
            f"`waldinger warehouse {args.action}` manages the embedded warehouse of the local environment; in prod "
            "the warehouse is your Snowflake account. Unset WALDINGER_ENV (or set it to local) to use it."
        )
    data_dir = environment.data_dir()
    if args.action == "status":
        _print_status(control.status(data_dir), args.json)
    elif args.action == "start":
        _print_status(control.start(data_dir, port=environment.requested_warehouse_port()), args.json)
    elif args.action == "stop":
        was_running = control.stop(data_dir)
        if args.json:
            print(json.dumps({"stopped": was_running}))
        else:
            print("embedded warehouse stopped" if was_running else "embedded warehouse was not running")
    elif args.action == "seed":
        return _seed(args)
    return EXIT_OK


def _seed(args: argparse.Namespace) -> int:
    from resources import environment
    from resources.warehouse import embedded_warehouse
    from waldinger_assets.demo_warehouse.seed import seed

    warehouse = embedded_warehouse(environment.data_dir())
    started = time.monotonic()
    result = seed(warehouse.get_connection)
    summary = {
        "tables_created": result.tables_created,
        "views_created": result.views_created,
        "objects_existing": result.objects_existing,
        "prompt_rows_inserted": result.prompt_rows_inserted,
        "prompt_dates_filled": [day.isoformat() for day in result.prompt_dates_filled],
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"demo warehouse seeded in {summary['seconds']}s: {result.tables_created} tables and "
            f"{result.views_created} views created, {result.objects_existing} already there, "
            f"{result.prompt_rows_inserted} prompt rows added"
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waldinger", description="The Waldinger LLM pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)

    warehouse = commands.add_parser("warehouse", help="the embedded Snowflake (local environment)")
    warehouse.add_argument("action", choices=["start", "stop", "status", "seed"])
    warehouse.add_argument("--json", action="store_true", help="print one JSON object")
    warehouse.set_defaults(handler=_warehouse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from resources.embedded_warehouse.control import WarehouseError
    from resources.environment import SettingsError

    try:
        return args.handler(args)
    except (SettingsError, WarehouseError) as error:
        print(f"waldinger: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:
        # Snowflake errors carry their own code and message; anything else is a bug worth a traceback.
        if type(error).__module__.startswith("snowflake.connector"):
            print(f"waldinger: Snowflake refused a statement: {error}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
