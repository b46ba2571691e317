"""The training job: fine-tunes the base model on the train split, evaluates it on the eval split, tracks the run
in MLflow, and writes the merged artifact.

    python -m waldinger_runtime.training.job --base-model DIR --train train.jsonl --eval eval.jsonl \
        --output DIR --dataset-version SHA [--method full|lora] [--steps N] ...

One script for both environments: Dagster runs it through Pipes (PipesSubprocessClient locally on the tiny model,
PipesAzureMLClient as an Azure ML command job on the GPU cluster with `--method lora` on Mistral-7B-Instruct).
MLflow's tracking URI comes from MLFLOW_TRACKING_URI: a sqlite store under the data directory locally (set by
Dagster), the workspace's own inside an Azure ML job (Azure ML sets it; the azureml-mlflow plugin resolves it).
The run records the parameters, the loss per step, the eval metrics, the training dataset version (as an MLflow
dataset input and a tag) and the code version. It reports the MLflow run id and the figures through Pipes.
Run by hand, it prints the same figures as JSON.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from waldinger_runtime.jsonl import read_jsonl
from waldinger_runtime.pipes import open_pipes, report_figures
from waldinger_runtime.training.loop import METHODS, TrainingParameters

DEFAULT_EXPERIMENT = "waldinger-fine-tuning"
LOSS_LOG_EVERY = 10
PROGRESS_LOG_EVERY = 100
EVAL_MAX_TOKENS = 64
EVAL_BATCH_SIZE = 64


def evaluate_artifact(artifact_dir: Path, rows: list[dict], engine: str = "auto") -> dict:
    """Greedy answers of the saved artifact on `rows` through the serving engine: exact match and parse rate."""
    from waldinger_runtime.engine import ChatRequest, load_engine
    from waldinger_runtime.ticket_triage import exact_match, parse_answer
    from waldinger_runtime.training.loop import chat_messages

    if not rows:
        return {"eval_rows": 0}
    loaded = load_engine(artifact_dir, prefer=engine)
    completions: list[str] = []
    for start in range(0, len(rows), EVAL_BATCH_SIZE):
        chunk = rows[start : start + EVAL_BATCH_SIZE]
        requests = [ChatRequest(tuple(chat_messages(row)), max_tokens=EVAL_MAX_TOKENS) for row in chunk]
        completions.extend(result.text for result in loaded.generate(requests))
    matches = sum(exact_match(row["expected"], text) for row, text in zip(rows, completions, strict=True))
    parsed = sum(parse_answer(text).parsed for text in completions)
    return {"eval_rows": len(rows), "eval_exact_match": matches / len(rows), "eval_parse_rate": parsed / len(rows)}


def _load(base_model: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return tokenizer, model


def run_training(args: argparse.Namespace, log=print) -> dict:
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from waldinger_runtime.artifact import artifact_sha256, find_artifact_dir
    from waldinger_runtime.training.loop import encode_examples, merged, prepare_model, train

    parameters = TrainingParameters(
        method=args.method,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        lora_rank=args.lora_rank,
    )
    train_rows, eval_rows = list(read_jsonl(args.train)), list(read_jsonl(args.eval))
    base_model = find_artifact_dir(args.base_model)
    tokenizer, model = _load(base_model)
    examples = encode_examples(tokenizer, train_rows)
    mlflow.set_experiment(args.experiment)
    with mlflow.start_run(run_name=args.run_name or None) as run:
        mlflow.set_tags(
            {
                "training_dataset_version": args.dataset_version,
                "code_version": args.code_version,
                "base_model": args.base_model_name or str(base_model),
                **({"dagster_run_id": args.dagster_run_id} if args.dagster_run_id else {}),
            }
        )
        mlflow.log_params({**parameters.to_json(), "train_rows": len(train_rows), "eval_rows": len(eval_rows)})
        mlflow.log_input(
            MetaDataset(
                source=resolve_dataset_source(str(args.train.resolve().parent)),
                name="training_dataset",
                digest=args.dataset_version[:36],
            ),
            context="training",
        )
        model = prepare_model(model, parameters)
        tracking = mlflow.tracking.MlflowClient()

        def on_step(step: int, loss: float, learning_rate: float) -> None:
            from mlflow.entities import Metric

            if step % LOSS_LOG_EVERY == 0 or step == parameters.steps - 1:
                now = int(time.time() * 1000)
                metrics = [Metric("loss", loss, now, step), Metric("learning_rate", learning_rate, now, step)]
                tracking.log_batch(run.info.run_id, metrics=metrics)
            if step % PROGRESS_LOG_EVERY == 0 or step == parameters.steps - 1:
                log(f"training: step {step + 1}/{parameters.steps}, loss {loss:.4f}")

        outcome = train(
            model, examples, parameters, pad_id=tokenizer.pad_token_id or tokenizer.eos_token_id, on_step=on_step
        )
        args.output.mkdir(parents=True, exist_ok=True)
        final = merged(model, parameters)
        final.save_pretrained(args.output, safe_serialization=True)
        tokenizer.save_pretrained(args.output)
        log(f"training: saved the merged model to {args.output}; evaluating on {len(eval_rows)} rows")
        metrics = evaluate_artifact(args.output, eval_rows, engine=args.engine)
        figures = {
            "mlflow_run_id": run.info.run_id,
            "method": parameters.method,
            "steps": outcome.steps,
            "train_seconds": round(outcome.seconds, 2),
            "steps_per_second": round(outcome.steps / outcome.seconds, 2) if outcome.seconds else 0.0,
            "final_loss": round(outcome.final_loss, 5),
            "trainable_parameters": outcome.trainable_parameters,
            "train_rows": len(train_rows),
            **{key: round(value, 4) if isinstance(value, float) else value for key, value in metrics.items()},
            "artifact_sha256": artifact_sha256(args.output),
        }
        mlflow.log_metrics(
            {key: float(value) for key, value in figures.items() if key.startswith("eval_") or key == "final_loss"}
        )
        mlflow.log_metrics({"train_seconds": outcome.seconds, "steps_per_second": figures["steps_per_second"]})
        mlflow.set_tag("artifact_sha256", figures["artifact_sha256"])
    return figures


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainingParameters()
    parser = argparse.ArgumentParser(description="Fine-tune the base model on the training dataset.")
    parser.add_argument("--base-model", required=True, type=Path, help="the base model artifact folder")
    parser.add_argument("--train", required=True, type=Path, help="train split JSONL (prompt, expected[, system])")
    parser.add_argument("--eval", required=True, type=Path, help="eval split JSONL")
    parser.add_argument("--output", required=True, type=Path, help="where the merged artifact goes")
    parser.add_argument("--dataset-version", required=True, help="the training dataset version (sha256)")
    parser.add_argument("--method", choices=METHODS, default=defaults.method)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--lora-rank", type=int, default=defaults.lora_rank)
    parser.add_argument("--engine", default="auto", choices=["auto", "transformers", "vllm"])
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="the MLflow experiment")
    parser.add_argument("--run-name", default="", help="the MLflow run's name")
    parser.add_argument("--code-version", default="unknown", help="the code commit this job runs")
    parser.add_argument("--base-model-name", default="", help="what the base model is (its source), for lineage")
    parser.add_argument("--dagster-run-id", default="")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    parser.add_argument("--pipes-blob-account-url", help="Azure Blob Storage account Dagster Pipes talks through")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # see batch_job.main: cancelling the run stops the job
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        print("MLFLOW_TRACKING_URI is not set; MLflow writes to ./mlruns", file=sys.stderr)
    with open_pipes(args.pipes_blob_account_url) as pipes:
        figures = run_training(args, log=pipes.log.info)
        report_figures(pipes, figures)
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
