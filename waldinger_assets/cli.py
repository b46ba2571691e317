"""The `waldinger` command line (see README and ../shared/DESIGN.md for the contract).

Exit codes: 0 success, 1 breaking drift (`drift report`), 2 error (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from resources import environment
from resources.embedded_warehouse import control
from waldinger_assets.demo_warehouse.seed import seed
from waldinger_assets.schema_drift.baseline import BaselineError, accept, load_baseline, write_baseline
from waldinger_assets.schema_drift.metadata import take_snapshot
from waldinger_assets.schema_drift.report import build_report
from waldinger_runtime.artifact import ArtifactError

# The project modules imported inside the commands below import Dagster at their module level; they load when a
# command needs them, so `waldinger --help` does not load Dagster.

EXIT_OK = 0
EXIT_BREAKING = 1  # `drift report`: breaking changes exist
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
    from resources.warehouse import embedded_warehouse

    warehouse = embedded_warehouse(environment.data_dir())
    started = time.monotonic()
    result = seed(warehouse.get_connection)
    summary = {
        "tables_created": result.tables_created,
        "views_created": result.views_created,
        "objects_existing": result.objects_existing,
        "prompt_rows_inserted": result.prompt_rows_inserted,
        "prompt_dates_filled": [day.isoformat() for day in result.prompt_dates_filled],
        "reviewed_examples_inserted": result.reviewed_examples_inserted,
        "day_labels_inserted": result.day_labels_inserted,
        "label_dates_filled": [day.isoformat() for day in result.label_dates_filled],
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"demo warehouse seeded in {summary['seconds']}s: {result.tables_created} tables and "
            f"{result.views_created} views created, {result.objects_existing} already there, "
            f"{result.prompt_rows_inserted} prompt rows, {result.reviewed_examples_inserted} reviewed examples and "
            f"{result.day_labels_inserted} labels of past prompts added"
        )
    return EXIT_OK


def _current_snapshot(databases_option: str | None):
    from resources.schema_drift import schema_drift_settings
    from resources.warehouse import warehouse_resource

    settings = schema_drift_settings()
    databases = [d.strip() for d in databases_option.split(",") if d.strip()] if databases_option else None
    history = settings.history()
    sql_memo = history.load_sql_cache()
    # EnvVar settings (prod credentials) resolve here, as they would inside a run.
    warehouse = warehouse_resource().process_config_and_initialize()
    with warehouse.get_connection() as connection:
        snapshot = take_snapshot(connection, databases or settings.databases, view_sql_memo=sql_memo)
    history.save_sql_cache(sql_memo)
    return snapshot, settings, environment


def _baseline_path(option: str | None, settings):
    from pathlib import Path

    return Path(option).expanduser().resolve() if option else Path(settings.baseline_path)


def _drift(args: argparse.Namespace) -> int:
    snapshot, settings, _ = _current_snapshot(args.databases)
    baseline_path = _baseline_path(args.baseline, settings)
    baseline = load_baseline(baseline_path)
    if args.action == "accept":
        objects = [o.strip() for o in args.objects.split(",") if o.strip()] if args.objects else None
        databases = list(snapshot.databases) if args.databases else None
        unknown = sorted(set(objects or ()) - {o.full_name for o in snapshot} - {o.full_name for o in baseline or ()})
        if unknown:
            print(f"waldinger: no such object in the snapshot or the baseline: {', '.join(unknown)}", file=sys.stderr)
            return EXIT_ERROR
        new_baseline = accept(snapshot, baseline, databases=databases, objects=objects)
        write_baseline(baseline_path, new_baseline)
        after = build_report(new_baseline, snapshot, settings.contract_objects)
        if baseline is None:
            print(f"recorded a new baseline of {len(new_baseline.objects)} objects in {baseline_path}")
        else:
            before = build_report(baseline, snapshot, settings.contract_objects)
            print(
                f"baseline {baseline_path} now holds {len(new_baseline.objects)} objects; "
                f"{len(before.changes) - len(after.changes)} change(s) accepted, {len(after.changes)} still pending"
            )
        return EXIT_OK

    report = build_report(baseline, snapshot, settings.contract_objects)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False, default=str))
    else:
        counts = report.counts()
        print(
            f"{report.objects} objects; {counts['changes']} change(s): {counts['breaking']} breaking "
            f"({counts['contract_breaking']} on contract objects), {counts['non_breaking']} non-breaking, "
            f"{counts['cosmetic']} cosmetic"
        )
        if report.changes:
            print(report.markdown())
    if not report.baseline_present:
        print(
            f"waldinger: no baseline at {baseline_path} yet, so nothing counts as drift; "
            "record one with `waldinger drift accept`",
            file=sys.stderr,
        )
    return EXIT_BREAKING if report.breaking else EXIT_OK


def _record_production_change(promotion) -> str:
    """Records the promotion as a materialization of production_model, so the UI's history shows it too."""
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return "not recorded in Dagster (DAGSTER_HOME is not set)"
    from dagster import AssetKey, AssetMaterialization, DagsterInstance

    from waldinger_assets.model.assets import PRODUCTION_MODEL_KEY

    with DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=AssetKey(PRODUCTION_MODEL_KEY), metadata=promotion.metadata())
        )
    return "recorded in Dagster"


def _model(args: argparse.Namespace) -> int:
    from resources.model_registry import model_registry_resource
    from waldinger_assets.model.promotion import PromotionError, promote_verified, rollback_verified

    if args.action in ("register", "evaluate"):
        from waldinger_assets import cli_training

        return (cli_training.register_command if args.action == "register" else cli_training.evaluate_command)(args)
    resource = model_registry_resource().process_config_and_initialize()
    registry, name = resource.registry(), resource.model_name
    if args.action == "list":
        versions = registry.list_versions(name)
        if args.json:
            print(json.dumps([v.to_json() for v in versions], indent=2))
        else:
            for v in versions:
                score = v.metrics.get("exact_match")
                evaluated = f"exact match {score:.3f} on {v.evaluated_on}" if score is not None else "not evaluated"
                print(f"{v.name} v{v.version}  {v.stage:<10}  {v.created_at}  sha256 {v.sha256[:12]}  {evaluated}")
            if not versions:
                print(f"no version of {name} registered yet (materialize waldinger/model/registered_model)")
        return EXIT_OK
    if args.action == "promote":
        try:
            promotion = promote_verified(
                registry, name, args.version, run_id=None, override_gate=args.override_gate, reason=args.reason
            )
        except PromotionError as error:
            if args.json and error.decision is not None:
                print(json.dumps({"model": name, "promoted": False, "gate": error.decision.to_json()}))
            raise
    else:
        promotion = rollback_verified(registry, name, run_id=None)
    recorded = _record_production_change(promotion)
    if args.json:
        print(json.dumps(promotion.to_json()))
    else:
        print(f"{name}: production is now version {promotion.version} (was {promotion.previous}); {recorded}")
        if promotion.override_reason:
            print(f"evaluation gate overridden ({promotion.gate.summary()}); reason: {promotion.override_reason}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from resources.serving import local_endpoint

    if environment.current_environment() is not environment.Environment.LOCAL:
        raise environment.SettingsError(
            f"`waldinger serve {args.action}` manages the local real-time endpoint; in prod the endpoint is the "
            "Azure Container App (its URL is in the metadata of waldinger/serving/realtime_deployment). Unset "
            "WALDINGER_ENV (or set it to local) to use it."
        )
    data_dir = environment.data_dir()
    if args.action == "stop":
        was_running = local_endpoint.stop(data_dir)
        if args.json:
            print(json.dumps({"stopped": was_running}))
        else:
            print("local endpoint stopped" if was_running else "local endpoint was not running")
        return EXIT_OK
    if args.action == "start":
        from resources.model_registry import model_registry_resource
        from resources.serving.artifacts import production_artifact

        resource = model_registry_resource().process_config_and_initialize()
        artifact = production_artifact(resource.registry(), resource.model_name, with_local_files=True)
        local_endpoint.start(
            data_dir,
            artifact,
            port=environment.requested_serve_port(),
            engine=environment.inference_engine(),
            api_key=environment.serving_api_key(),  # the same key the realtime_deployment asset hands it
        )
    status = local_endpoint.status(data_dir)
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    elif status.running:
        print(f"local endpoint serving {status.model} version {status.version} at {status.url} (pid {status.pid})")
    else:
        print("local endpoint not running; start it with `waldinger serve start`")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waldinger", description="The Waldinger LLM pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)

    warehouse = commands.add_parser("warehouse", help="the embedded Snowflake (local environment)")
    warehouse.add_argument("action", choices=["start", "stop", "status", "seed"])
    warehouse.add_argument("--json", action="store_true", help="print one JSON object")
    warehouse.set_defaults(handler=_warehouse)

    drift = commands.add_parser("drift", help="schema drift against the baseline")
    drift.add_argument("action", choices=["report", "accept"])
    drift.add_argument("--json", action="store_true", help="report: print one JSON object")
    drift.add_argument("--databases", help="comma-separated databases (default: the configured ones)")
    drift.add_argument("--baseline", help="baseline file (default: schema_baseline/<environment>.json)")
    drift.add_argument(
        "--objects", help="accept: only these objects, comma-separated DB.SCHEMA.NAME (as Snowflake stores them)"
    )
    drift.set_defaults(handler=_drift)

    model = commands.add_parser("model", help="registered versions of the model")
    model.add_argument("action", choices=["list", "register", "evaluate", "promote", "rollback"])
    model.add_argument("path", nargs="?", help="register: the artifact folder (config, weights, tokenizer)")
    model.add_argument("--version", help="promote: the version (default: the latest registered); evaluate: which")
    model.add_argument(
        "--override-gate",
        action="store_true",
        help="promote: even if the evaluation gate refuses (needs --reason; both are recorded)",
    )
    model.add_argument("--reason", help="promote: why the evaluation gate is overridden")
    model.add_argument("--json", action="store_true", help="print JSON")
    model.set_defaults(handler=_model, check=_check_model_arguments)

    from waldinger_assets.cli_training import add_train_parser

    add_train_parser(commands)

    serve = commands.add_parser("serve", help="the local real-time endpoint (OpenAI API) for the production version")
    serve.add_argument("action", choices=["start", "stop", "status"])
    serve.add_argument("--json", action="store_true", help="print one JSON object")
    serve.set_defaults(handler=_serve)
    return parser


def _check_model_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2, before anything is read): the override needs a reason, and only promote takes them."""
    if (args.override_gate or args.reason is not None) and args.action != "promote":
        parser.error(f"--override-gate and --reason go with `model promote`, not `model {args.action}`")
    if args.override_gate and not (args.reason or "").strip():
        parser.error("--override-gate needs --reason TEXT: the reason is recorded with the promotion")
    if args.reason is not None and not args.override_gate:
        parser.error("--reason is recorded only with --override-gate; add it, or leave --reason out")
    if (args.path is not None) != (args.action == "register"):
        parser.error(
            "`model register` takes the artifact folder: `waldinger model register PATH`; no other action does"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "check"):
        args.check(parser, args)
    from resources.model_registry.embedded import RegistryError
    from resources.serving.artifacts import DeploymentError
    from waldinger_assets.cli_training import CommandError
    from waldinger_assets.model.promotion import PromotionError

    try:
        return args.handler(args)
    except (
        environment.SettingsError,
        control.WarehouseError,
        BaselineError,
        LookupError,
        ArtifactError,
        RegistryError,
        PromotionError,
        DeploymentError,
        CommandError,
    ) as error:
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
