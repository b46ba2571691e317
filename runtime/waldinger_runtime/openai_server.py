"""The local real-time endpoint: an OpenAI-compatible HTTP server over one inference engine.

`/v1/chat/completions`, `/v1/models`, `/health`, `/metrics` (Prometheus text, named like vLLM's metrics where
they mean the same). Concurrent requests are batched together: the first request of a batch waits at most
`batch_window_ms` for others (up to `max_batch`), then the whole batch runs as one `generate` call, which decodes
each request with its own temperature.

With an API key (WALDINGER_SERVING_API_KEY in the server's environment, as vLLM reads VLLM_API_KEY), every
`/v1/*` request needs `Authorization: Bearer <key>`; `/health` and `/metrics` stay open, as vLLM's do.

Run by `waldinger serve start`, or: python -m waldinger_runtime.openai_server --artifact DIR --model NAME
--version V --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from waldinger_runtime.engine import ChatRequest, ChatResult, EngineError

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROLES = {"system", "user", "assistant"}
MAX_TOKENS_LIMIT = 4096


class BadRequest(ValueError):
    pass


@dataclass
class Metrics:
    running: int = 0
    waiting: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    success: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    batches: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    latency_counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0

    def observe_latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[index] += 1

    def render(self, model: str) -> str:
        label = f'model_name="{model}"'
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{label}}} {self.running}",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{{{label}}} {self.waiting}",
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            f"vllm:prompt_tokens_total{{{label}}} {self.prompt_tokens}",
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{{{label}}} {self.generation_tokens}",
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
        ]
        for reason, count in sorted(self.success.items()):
            lines.append(f'vllm:request_success_total{{{label},finished_reason="{reason}"}} {count}')
        lines += [
            "# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.",
            "# TYPE vllm:e2e_request_latency_seconds histogram",
        ]
        for bound, count in zip(LATENCY_BUCKETS, self.latency_counts, strict=True):
            lines.append(f'vllm:e2e_request_latency_seconds_bucket{{{label},le="{bound}"}} {count}')
        lines += [
            f'vllm:e2e_request_latency_seconds_bucket{{{label},le="+Inf"}} {self.latency_count}',
            f"vllm:e2e_request_latency_seconds_sum{{{label}}} {self.latency_sum:.6f}",
            f"vllm:e2e_request_latency_seconds_count{{{label}}} {self.latency_count}",
            "# HELP waldinger_request_errors_total Requests that failed (bad input or engine error).",
            "# TYPE waldinger_request_errors_total counter",
            f"waldinger_request_errors_total{{{label}}} {self.errors}",
            "# HELP waldinger_batches_total Engine calls; requests per call shows the batching.",
            "# TYPE waldinger_batches_total counter",
            f"waldinger_batches_total{{{label}}} {self.batches}",
            "# TYPE waldinger_batch_size_max gauge",
            f"waldinger_batch_size_max{{{label}}} {max(self.batch_sizes, default=0)}",
        ]
        return "\n".join(lines) + "\n"


def parse_chat_request(body: dict, context_window: int) -> ChatRequest:
    """An OpenAI chat completion body -> ChatRequest, or BadRequest saying what is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if body.get("stream"):
        raise BadRequest("stream=true is not supported by this endpoint; send stream=false")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(f"every message needs a role in {sorted(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise BadRequest("every message needs a string 'content'")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 64))
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= min(MAX_TOKENS_LIMIT, context_window):
        raise BadRequest(f"'max_tokens' must be an integer between 1 and {min(MAX_TOKENS_LIMIT, context_window)}")
    temperature = body.get("temperature", 0.0)
    if not isinstance(temperature, int | float) or temperature < 0:
        raise BadRequest("'temperature' must be a number >= 0")
    return ChatRequest(
        messages=tuple({"role": m["role"], "content": m["content"]} for m in messages),
        max_tokens=max_tokens,
        temperature=float(temperature),
    )


def chat_completion(result: ChatResult, model: str | None, fingerprint: str) -> dict:
    """The OpenAI `chat.completion` object for one engine result (the endpoint's and the batch job's)."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
    }


class Batcher:
    """Collects concurrent requests into batches for the engine."""

    def __init__(self, engine, metrics: Metrics, max_batch: int, window_s: float) -> None:
        self.engine = engine
        self.metrics = metrics
        self.max_batch = max_batch
        self.window_s = window_s
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def submit(self, request: ChatRequest) -> ChatResult:
        future = asyncio.get_running_loop().create_future()
        self.metrics.waiting += 1
        await self.queue.put((request, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except TimeoutError:
                    break
            self.metrics.waiting -= len(batch)
            self.metrics.running += len(batch)
            requests = [r for r, _ in batch]
            try:
                results = await asyncio.to_thread(self.engine.generate, requests)
                self.metrics.batches += 1
                self.metrics.batch_sizes.append(len(batch))
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            except Exception as error:  # one bad batch fails its requests, not the server
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            finally:
                self.metrics.running -= len(batch)


class BearerKeyMiddleware:
    """Requires `Authorization: Bearer <api_key>` on /v1/* (what vLLM's --api-key does) and answers anything else
    there with 401 and an OpenAI-style error. The key is compared in constant time."""

    def __init__(self, app, api_key: str) -> None:
        if not api_key:
            raise ValueError("an empty API key would let every request in; pass None for an open endpoint")
        self.app = app
        self._expected = api_key.encode()

    def authorized(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._expected)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1"):
            from starlette.datastructures import Headers
            from starlette.responses import JSONResponse

            if not self.authorized(Headers(scope=scope).get("authorization")):
                error = {
                    "message": "Incorrect or missing API key: send the header 'Authorization: Bearer <key>' "
                    "(the key is WALDINGER_SERVING_API_KEY).",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
                response = JSONResponse({"error": error}, 401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    engine,
    model_name: str,
    model_version: str,
    max_batch: int = 16,
    batch_window_ms: float = 5.0,
    api_key: str | None = None,
):
    """The ASGI app; with `api_key`, /v1/* requires it as a bearer token."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    metrics = Metrics()
    batcher = Batcher(engine, metrics, max_batch=max_batch, window_s=batch_window_ms / 1000)
    created = int(time.time())

    def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
        metrics.errors += 1
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)

    async def chat_completions(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body is not valid JSON")
        try:
            chat = parse_chat_request(body, engine.context_window)
            if body.get("model") not in (None, model_name):
                return error(404, f"model {body.get('model')!r} is not served here; use {model_name!r}", "not_found")
            prompt_tokens = len(engine.prompt_ids(chat.messages))
            if prompt_tokens + chat.max_tokens > engine.context_window:
                raise BadRequest(
                    f"the prompt has {prompt_tokens} tokens; with max_tokens {chat.max_tokens} it exceeds the "
                    f"context window of {engine.context_window} tokens"
                )
        except BadRequest as bad:
            return error(400, str(bad))
        try:
            result = await batcher.submit(chat)
        except EngineError as engine_error:
            return error(400, str(engine_error))
        except Exception as failure:  # the engine crashed: report it, keep serving
            return error(500, f"the engine failed: {type(failure).__name__}", "server_error")
        metrics.prompt_tokens += result.prompt_tokens
        metrics.generation_tokens += result.completion_tokens
        metrics.success[result.finish_reason] = metrics.success.get(result.finish_reason, 0) + 1
        metrics.observe_latency(time.perf_counter() - started)
        return JSONResponse(chat_completion(result, model_name, f"{model_name}:{model_version}"))

    async def models(_request: Request) -> JSONResponse:
        entry = {"id": model_name, "object": "model", "created": created, "owned_by": "waldinger"}
        entry["root"] = f"{model_name}:{model_version}"
        entry["max_model_len"] = engine.context_window
        return JSONResponse({"object": "list", "data": [entry]})

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "model": model_name, "version": model_version, "engine": engine.name, "pid": os.getpid()}
        )

    async def prometheus(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(model_name), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        batcher.task = asyncio.create_task(batcher.run())
        yield
        batcher.task.cancel()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
        middleware=[Middleware(BearerKeyMiddleware, api_key=api_key)] if api_key else [],
    )
    app.state.metrics = metrics
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible endpoint over one model artifact.")
    parser.add_argument("--artifact", required=True, type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--engine", default="auto", choices=["auto", "transformers", "vllm"])
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--batch-window-ms", type=float, default=5.0)
    parser.add_argument("--instance-dir", help="the folder `waldinger serve` keeps this server's state in")
    args = parser.parse_args()

    import uvicorn

    from waldinger_runtime.engine import load_engine
    from waldinger_runtime.settings import serving_api_key

    engine = load_engine(args.artifact, prefer=args.engine)
    # The key comes from the environment, never an argument: any user can read a process's command line.
    api_key = serving_api_key()
    app = create_app(engine, args.model, args.version, args.max_batch, args.batch_window_ms, api_key=api_key)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
