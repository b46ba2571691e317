"""The batch job: OpenAI batch JSONL in, OpenAI batch JSONL out, from one registered model artifact.

    python -m waldinger_runtime.batch_job --model DIR --input requests.jsonl --output results.jsonl

Input lines are `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`, the format
`vllm run-batch` and the OpenAI Batch API read; output lines are `{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}` in input order, plus `latency_ms`. A request that cannot run (bad body, prompt
beyond the context window) gets a 400 line and the job goes on: lines in = lines out. Anything else (the engine
crashes) fails the job with no output file, so a re-run starts clean.

Dagster runs it through Pipes (PipesSubprocessClient locally, PipesAzureMLClient on the Azure ML cluster, where
`--pipes-blob-account-url` names the storage account Pipes talks through); it reports rows, tokens and
tokens/s. Run by hand, it prints the same figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from waldinger_runtime.engine import ChatRequest, ChatResult, EngineError
from waldinger_runtime.jsonl import write_jsonl
from waldinger_runtime.openai_server import BadRequest, chat_completion, parse_chat_request
from waldinger_runtime.pipes import open_pipes, report_figures

CHAT_COMPLETIONS_URL = "/v1/chat/completions"


@dataclass(frozen=True)
class BatchLine:
    """One input line: a request ready for the engine, or the error that stops it."""

    custom_id: str
    model: str | None
    request: ChatRequest | None
    error: str | None = None
    error_code: str = "invalid_request"


def parse_batch_line(raw: str, line_number: int, context_window: int) -> BatchLine:
    try:
        item = json.loads(raw)
    except ValueError:
        return BatchLine(f"line-{line_number}", None, None, f"line {line_number} is not valid JSON")
    if not isinstance(item, dict):
        return BatchLine(f"line-{line_number}", None, None, f"line {line_number} is not a JSON object")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        custom_id = f"line-{line_number}"
        return BatchLine(custom_id, None, None, "every line needs a non-empty string 'custom_id'")
    if item.get("url") != CHAT_COMPLETIONS_URL:
        return BatchLine(custom_id, None, None, f"only {CHAT_COMPLETIONS_URL} is supported, not {item.get('url')!r}")
    body = item.get("body")
    try:
        request = parse_chat_request(body, context_window)
    except BadRequest as bad:
        return BatchLine(custom_id, None, None, str(bad))
    return BatchLine(custom_id, body.get("model"), request)


def completion_line(line: BatchLine, result: ChatResult, fingerprint: str) -> dict:
    request_id = f"batch-req-{uuid.uuid4().hex}"
    body = chat_completion(result, line.model, fingerprint)
    return {
        "id": f"batch-{uuid.uuid4().hex}",
        "custom_id": line.custom_id,
        "response": {"status_code": 200, "request_id": request_id, "body": body},
        "error": None,
        "latency_ms": round(result.seconds * 1000, 3),
    }


def error_line(line: BatchLine) -> dict:
    body = {"error": {"message": line.error, "type": "invalid_request_error", "param": None, "code": line.error_code}}
    return {
        "id": f"batch-{uuid.uuid4().hex}",
        "custom_id": line.custom_id,
        "response": {"status_code": 400, "request_id": f"batch-req-{uuid.uuid4().hex}", "body": body},
        "error": None,
        "latency_ms": 0.0,
    }


def _check_context(engine, lines: list[BatchLine]) -> list[BatchLine]:
    """Marks the requests whose prompt + max_tokens cannot fit the context window."""
    checked = []
    for line in lines:
        if line.request is not None:
            prompt_tokens = len(engine.prompt_ids(line.request.messages))
            if prompt_tokens + line.request.max_tokens > engine.context_window:
                line = BatchLine(
                    line.custom_id,
                    line.model,
                    None,
                    f"the prompt has {prompt_tokens} tokens; with max_tokens {line.request.max_tokens} it exceeds "
                    f"the context window of {engine.context_window} tokens",
                    "context_length_exceeded",
                )
        checked.append(line)
    return checked


def run_batch(
    engine,
    raw_lines: Iterable[str],
    batch_size: int,
    fingerprint: str,
    log: Callable[[str], None] = lambda _message: None,
) -> tuple[list[dict], dict]:
    """Output lines in input order, and the job's figures. Requests run in batches of similar prompt length
    (less padding); a batch the engine refuses as a whole is retried one request at a time."""
    started = time.perf_counter()
    parsed, seen = [], set()
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        line = parse_batch_line(raw, number, engine.context_window)
        if line.custom_id in seen:
            line = BatchLine(line.custom_id, None, None, f"custom_id {line.custom_id!r} appears twice", "duplicate")
        seen.add(line.custom_id)
        parsed.append(line)
    parsed = _check_context(engine, parsed)
    runnable = sorted(
        (index for index, line in enumerate(parsed) if line.request is not None),
        key=lambda index: len(str(parsed[index].request.messages)),
    )
    outputs: list[dict | None] = [None if line.request else error_line(line) for line in parsed]
    prompt_tokens = completion_tokens = 0
    for start in range(0, len(runnable), batch_size):
        chunk = runnable[start : start + batch_size]
        requests = [parsed[index].request for index in chunk]
        try:
            results = engine.generate(requests)
        except EngineError:
            results = []
            for index in chunk:
                try:
                    results.extend(engine.generate([parsed[index].request]))
                except EngineError as refused:
                    line = parsed[index]
                    results.append(BatchLine(line.custom_id, line.model, None, str(refused)))
        for index, result in zip(chunk, results, strict=True):
            if isinstance(result, BatchLine):
                outputs[index] = error_line(result)
                continue
            outputs[index] = completion_line(parsed[index], result, fingerprint)
            prompt_tokens += result.prompt_tokens
            completion_tokens += result.completion_tokens
        log(f"batch job: {min(start + batch_size, len(runnable))}/{len(runnable)} requests done")
    seconds = time.perf_counter() - started
    figures = {
        "rows": len(parsed),
        "rows_ok": sum(1 for output in outputs if output["response"]["status_code"] == 200),
        "rows_failed": sum(1 for output in outputs if output["response"]["status_code"] != 200),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "seconds": round(seconds, 3),
        "completion_tokens_per_second": round(completion_tokens / seconds, 2) if seconds else 0.0,
        "engine": engine.name,
    }
    return outputs, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chat completions for an OpenAI batch JSONL file.")
    parser.add_argument("--model", required=True, type=Path, help="the model artifact folder")
    parser.add_argument("--input", required=True, type=Path, help="OpenAI batch JSONL requests")
    parser.add_argument("--output", required=True, type=Path, help="where the OpenAI batch JSONL results go")
    parser.add_argument("--batch-size", type=int, default=32, help="requests per engine call")
    parser.add_argument("--engine", default="auto", choices=["auto", "transformers", "vllm"])
    parser.add_argument("--fingerprint", default="", help="system_fingerprint of the responses (model:version)")
    parser.add_argument("--pipes-blob-account-url", help="Azure Blob Storage account Dagster Pipes talks through")
    args = parser.parse_args(argv)
    # A run worker may have started this process with SIGTERM ignored (Dagster maps SIGTERM to SIGINT's handler,
    # and SIGINT is ignored in background processes): cancelling the run must still stop the job.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    from waldinger_runtime.artifact import find_artifact_dir
    from waldinger_runtime.engine import load_engine

    with open_pipes(args.pipes_blob_account_url) as pipes:
        # Azure ML mounts a registered model with its folder inside; locally --model is the folder itself.
        model_dir = find_artifact_dir(args.model)
        pipes.log.info(f"batch job: loading {model_dir}")
        engine = load_engine(model_dir, prefer=args.engine)
        with args.input.open(encoding="utf-8") as handle:
            outputs, figures = run_batch(engine, handle, args.batch_size, args.fingerprint, log=pipes.log.info)
        write_jsonl(args.output, outputs)
        report_figures(pipes, figures)
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
