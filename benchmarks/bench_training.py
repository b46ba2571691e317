"""Training benchmark: the training job on the tiny base, as `make demo` runs it (the same script, the default
local schedule), over the demo's labeled examples; then the registered-version evaluation path (the batch job
through the engine) on the eval split.

    .venv/bin/python benchmarks/bench_training.py [--steps 1000 600 ...] [--threads 2]

Prints, per schedule: training wall time and steps/s, the job's own eval exact match and parse rate, and the
evaluation's wall time through the batch job. These are the figures the tiny model's size and schedule were
chosen from (resources/model_source/tiny_model.py); nothing here is asserted.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "runtime")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the local schedule's")
    parser.add_argument("--data-seed", type=int, default=4242, help="which demo-like labeled examples")
    args = parser.parse_args()

    from resources.demo_tickets import tickets
    from resources.model_source.tiny_model import TINY_CONFIG, build_tiny_model
    from resources.training.settings import LOCAL_DEFAULTS
    from waldinger_assets.training.dataset import dataset_rows, dataset_version, split_records
    from waldinger_runtime.jsonl import write_jsonl

    with tempfile.TemporaryDirectory(prefix="bench-training-") as scratch:
        root = Path(scratch)
        base = build_tiny_model(root / "base")
        labeled = [
            (f"rev-{i:06d}", t.prompt, t.expected, "2026-11-01") for i, t in enumerate(tickets(args.data_seed, 4000))
        ]
        rows = dataset_rows(labeled, LOCAL_DEFAULTS.eval_percent).rows
        write_jsonl(root / "train.jsonl", split_records(rows, "train"))
        write_jsonl(root / "eval.jsonl", split_records(rows, "eval"))
        print(f"tiny base: {TINY_CONFIG['hidden_size']} hidden x {TINY_CONFIG['num_hidden_layers']} layers")
        print(f"dataset: {len(split_records(rows, 'train'))} train, {len(split_records(rows, 'eval'))} eval rows")
        for steps in args.steps:
            output = root / f"model-{steps}"
            command = [
                sys.executable,
                "-m",
                "waldinger_runtime.training.job",
                "--base-model",
                str(base),
                "--train",
                str(root / "train.jsonl"),
                "--eval",
                str(root / "eval.jsonl"),
                "--output",
                str(output),
                "--dataset-version",
                dataset_version(rows),
                "--steps",
                str(steps),
                "--batch-size",
                str(LOCAL_DEFAULTS.batch_size),
                "--learning-rate",
                str(args.learning_rate or LOCAL_DEFAULTS.learning_rate),
                "--threads",
                str(args.threads),
                "--engine",
                "transformers",
            ]
            started = time.perf_counter()
            finished = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=True,
                env={
                    "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'runtime'}",
                    "PATH": "/usr/bin:/bin",
                    "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
                },
            )
            wall = time.perf_counter() - started
            figures = json.loads(finished.stderr.strip().splitlines()[-1])
            print(
                f"steps {steps}: training {figures['train_seconds']:.1f} s ({figures['steps_per_second']:.2f} "
                f"steps/s, final loss {figures['final_loss']:.4f}); job's eval exact match "
                f"{figures['eval_exact_match']:.3f}, parse rate {figures['eval_parse_rate']:.3f}; job wall "
                f"{wall:.1f} s (load, save, eval included)"
            )
            requests = [
                json.dumps(
                    {
                        "custom_id": r["example_id"],
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "messages": [{"role": "user", "content": r["prompt"]}],
                            "max_tokens": 64,
                            "temperature": 0,
                        },
                    }
                )
                for r in split_records(rows, "eval")
            ]
            (root / "requests.jsonl").write_text("\n".join(requests) + "\n")
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "waldinger_runtime.batch_job",
                    "--model",
                    str(output),
                    "--input",
                    str(root / "requests.jsonl"),
                    "--output",
                    str(root / "results.jsonl"),
                    "--engine",
                    "transformers",
                ],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'runtime'}", "PATH": "/usr/bin:/bin"},
            )
            print(
                f"steps {steps}: evaluation through the batch job, {len(requests)} eval rows: "
                f"{time.perf_counter() - started:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
