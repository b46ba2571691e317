"""The CLI's model-quality commands: `waldinger model register PATH`, `waldinger model evaluate --version N` and
`waldinger train dataset --split train|eval --jsonl`.

Evaluation runs as a Dagster run of the `evaluate_model` job (the `evaluation_on_the_eval_split` check) on the
project's instance, executed in this process: the same code, engine and batch compute as in the graph (the Azure
ML cluster in prod), and the run shows in the UI. The eval split is the latest materialized training dataset.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from resources import environment

EXIT_OK, EXIT_ERROR = 0, 2


class CommandError(RuntimeError):
    """The command cannot do what was asked; the message says what to do."""


def _instance():
    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        home = environment.data_dir() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").touch()
        os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def _definitions():
    from waldinger_assets.definitions import defs

    return defs


def _training_dataset(instance):
    from dagster import AssetKey

    from waldinger_assets.training.names import TRAINING_DATASET_KEY

    if instance.get_latest_materialization_event(AssetKey(TRAINING_DATASET_KEY)) is None:
        raise CommandError(
            "The training dataset has never been materialized: run `make demo`, or materialize "
            "waldinger/training/training_dataset, then try again."
        )
    return _definitions().load_asset_value(TRAINING_DATASET_KEY, instance=instance)


def _evaluate(instance, version: str) -> dict:
    """Runs the evaluate_model job for `version`; the recorded evaluation, as JSON."""
    from waldinger_assets.model.jobs import EVALUATION_CHECK_KEY

    defs = _definitions()
    job = defs.get_job_def("evaluate_model")
    check_op = next(node.name for node in job.graph.node_dict.values() if EVALUATION_CHECK_KEY.name in node.name)
    result = job.execute_in_process(
        instance=instance, run_config={"ops": {check_op: {"config": {"version": version}}}}, raise_on_error=False
    )
    evaluations = result.get_asset_check_evaluations()
    if not evaluations:
        failures = [event.event_specific_data.error.message for event in result.all_events if event.is_step_failure]
        raise CommandError(
            f"Evaluating version {version} failed (Dagster run {result.run_id}): " + " ".join(failures).strip()
        )
    (evaluation,) = evaluations
    metadata = {key: getattr(value, "value", value) for key, value in evaluation.metadata.items()}
    return {
        "version": version,
        "passed": evaluation.passed,
        "summary": evaluation.description,
        "metrics": {key: metadata[key] for key in metadata if isinstance(metadata[key], float)},
        "evaluated_on": metadata.get("evaluated_on"),
        "eval_rows": metadata.get("eval_rows"),
        "dagster_run_id": result.run_id,
    }


def register_command(args: argparse.Namespace) -> int:
    from resources.model_registry import model_registry_resource
    from waldinger_runtime.artifact import validate_artifact

    path = Path(args.path).expanduser().resolve()
    validate_artifact(path)
    with _instance() as instance:
        _training_dataset(instance)  # no eval split, no evaluation: say so before registering anything
    resource = model_registry_resource().process_config_and_initialize()
    registry = resource.registry()
    version, created = registry.register(
        resource.model_name,
        path,
        tags={
            "source": f"path:{path}",
            "code_version": environment.code_version(),
            "registered_via": "waldinger model register",
        },
        properties={"registered_by": "waldinger", "format": "transformers"},
    )
    with _instance() as instance:
        evaluation = _evaluate(instance, version.version)
    summary = {"model": version.name, "version": version.version, "created": created, "sha256": version.sha256}
    summary.update({key: evaluation[key] for key in ("metrics", "passed", "evaluated_on", "dagster_run_id")})
    _print(
        summary,
        args.json,
        f"{'registered' if created else 'already registered as'} {version.name} "
        f"version {version.version}; {evaluation['summary']}",
    )
    return EXIT_OK


def evaluate_command(args: argparse.Namespace) -> int:
    from resources.model_registry import model_registry_resource

    if not args.version:
        raise CommandError("`waldinger model evaluate` needs --version N (see `waldinger model list`).")
    resource = model_registry_resource().process_config_and_initialize()
    resource.registry().get(resource.model_name, args.version)  # a clear error for an unknown version
    with _instance() as instance:
        _training_dataset(instance)  # a clear error when there is no eval split yet
        evaluation = _evaluate(instance, args.version)
    _print({"model": resource.model_name, **evaluation}, args.json, evaluation["summary"])
    return EXIT_OK


def dataset_command(args: argparse.Namespace) -> int:
    from waldinger_assets.training.assets import frame_rows
    from waldinger_assets.training.dataset import dataset_version

    with _instance() as instance:
        rows = frame_rows(_training_dataset(instance))
    version = dataset_version(rows)
    chosen = [row for row in rows if row["split"] == args.split]
    if args.jsonl:
        for row in chosen:
            record = {key: row[key] for key in ("example_id", "prompt", "expected", "labeled_at", "split")}
            sys.stdout.write(json.dumps({**record, "dataset_version": version}, ensure_ascii=False) + "\n")
    else:
        print(f"training dataset {version}: {len(chosen)} {args.split} rows of {len(rows)} (use --jsonl for the rows)")
    return EXIT_OK


def _print(summary: dict, as_json: bool, text: str) -> None:
    print(json.dumps(summary) if as_json else text)


def add_train_parser(commands) -> None:
    train = commands.add_parser("train", help="the training data of the model")
    train.add_argument("action", choices=["dataset"])
    train.add_argument("--split", choices=["train", "eval"], default="train")
    train.add_argument("--jsonl", action="store_true", help="one JSON object per row")
    train.set_defaults(handler=dataset_command)
