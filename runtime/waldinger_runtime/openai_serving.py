"""The endpoint's serving logic, apart from HTTP: concurrent chat requests batched into one engine call, the
answers to each route as plain data, and the Prometheus metrics (named like vLLM's where they mean the same)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field

from waldinger_runtime.engine import ChatRequest, ChatResult, EngineError
from waldinger_runtime.openai_protocol import BadRequest, chat_completion, error_body, model_list, parse_chat_request

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


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

    def record_success(self, result: ChatResult, seconds: float) -> None:
        """A request answered: its tokens, its finish reason and its end-to-end latency."""
        self.prompt_tokens += result.prompt_tokens
        self.generation_tokens += result.completion_tokens
        self.success[result.finish_reason] = self.success.get(result.finish_reason, 0) + 1
        self.observe_latency(seconds)

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


@dataclass(frozen=True)
class ErrorResponse:
    """A request that gets an error: the HTTP status and the OpenAI-style error body."""

    status: int
    body: dict


class ChatServing:
    """What each route answers, for one engine serving one model version; counts every error in the metrics."""

    def __init__(self, engine, model_name: str, model_version: str, max_batch: int, batch_window_ms: float) -> None:
        self.engine = engine
        self.model_name = model_name
        self.model_version = model_version
        self.metrics = Metrics()
        self.batcher = Batcher(engine, self.metrics, max_batch=max_batch, window_s=batch_window_ms / 1000)
        self.created = int(time.time())

    def error(self, status: int, message: str, kind: str = "invalid_request_error") -> ErrorResponse:
        self.metrics.errors += 1
        return ErrorResponse(status, error_body(message, kind))

    async def create_chat_completion(self, body: dict, started: float) -> dict | ErrorResponse:
        """The `chat.completion` for `body` (the request's JSON, read at `started`), or the error it gets."""
        try:
            chat = parse_chat_request(body, self.engine.context_window)
            if body.get("model") not in (None, self.model_name):
                return self.error(
                    404, f"model {body.get('model')!r} is not served here; use {self.model_name!r}", "not_found"
                )
            self.check_context_window(chat)
        except BadRequest as bad:
            return self.error(400, str(bad))
        try:
            result = await self.batcher.submit(chat)
        except EngineError as engine_error:
            return self.error(400, str(engine_error))
        except Exception as failure:  # the engine crashed: report it, keep serving
            return self.error(500, f"the engine failed: {type(failure).__name__}", "server_error")
        self.metrics.record_success(result, time.perf_counter() - started)
        return chat_completion(result, self.model_name, f"{self.model_name}:{self.model_version}")

    def check_context_window(self, chat: ChatRequest) -> None:
        prompt_tokens = len(self.engine.prompt_ids(chat.messages))
        if prompt_tokens + chat.max_tokens > self.engine.context_window:
            raise BadRequest(
                f"the prompt has {prompt_tokens} tokens; with max_tokens {chat.max_tokens} it exceeds the "
                f"context window of {self.engine.context_window} tokens"
            )

    def models(self) -> dict:
        return model_list(self.model_name, self.model_version, self.created, self.engine.context_window)

    def health(self) -> dict:
        return {
            "status": "ok",
            "model": self.model_name,
            "version": self.model_version,
            "engine": self.engine.name,
            "pid": os.getpid(),
        }

    def prometheus_text(self) -> str:
        return self.metrics.render(self.model_name)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        """Runs the batcher while the server runs."""
        self.batcher.task = asyncio.create_task(self.batcher.run())
        yield
        self.batcher.task.cancel()
