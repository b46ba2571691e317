"""The local real-time endpoint: an OpenAI-compatible HTTP server over one inference engine.

`/v1/chat/completions`, `/v1/models`, `/health`, `/metrics` (Prometheus text, named like vLLM's metrics where
they mean the same). Concurrent requests are batched together: the first request of a batch waits at most
`batch_window_ms` for others (up to `max_batch`), then the whole batch runs as one `generate` call, which decodes
each request with its own temperature.

With an API key (WALDINGER_SERVING_API_KEY in the server's environment, as vLLM reads VLLM_API_KEY), every
`/v1/*` request needs `Authorization: Bearer <key>`; `/health` and `/metrics` stay open, as vLLM's do.

Split like vLLM's OpenAI server: the wire format is waldinger_runtime.openai_protocol, the serving logic (batching,
metrics, each route's answer) waldinger_runtime.openai_serving; this module is the HTTP edge (routes, the API key
middleware, the app) and the command line.

Run by `waldinger serve start`, or: python -m waldinger_runtime.openai_server --artifact DIR --model NAME
--version V --port PORT
"""

from __future__ import annotations

import argparse
import hmac
import time
from pathlib import Path

from waldinger_runtime.openai_protocol import BadRequest, chat_completion, error_body, parse_chat_request
from waldinger_runtime.openai_serving import ChatServing, ErrorResponse

# The batch job reads its requests and writes its answers with the same protocol functions.
__all__ = ["BadRequest", "BearerKeyMiddleware", "chat_completion", "create_app", "main", "parse_chat_request"]


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
                message = (
                    "Incorrect or missing API key: send the header 'Authorization: Bearer <key>' "
                    "(the key is WALDINGER_SERVING_API_KEY)."
                )
                body = error_body(message, code="invalid_api_key")
                response = JSONResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def middleware(api_key: str | None) -> list:
    """With `api_key`, /v1/* requires it as a bearer token; without one, the endpoint is open."""
    from starlette.middleware import Middleware

    return [Middleware(BearerKeyMiddleware, api_key=api_key)] if api_key else []


def routes(serving: ChatServing) -> list:
    """The HTTP routes: each reads its request, asks `serving`, and answers with JSON (or Prometheus text)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    def respond(answer: dict | ErrorResponse) -> JSONResponse:
        if isinstance(answer, ErrorResponse):
            return JSONResponse(answer.body, answer.status)
        return JSONResponse(answer)

    async def chat_completions(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            body = await request.json()
        except ValueError:
            return respond(serving.error(400, "the body is not valid JSON"))
        return respond(await serving.create_chat_completion(body, started))

    async def models(_request: Request) -> JSONResponse:
        return JSONResponse(serving.models())

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse(serving.health())

    async def prometheus(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(serving.prometheus_text(), media_type="text/plain; version=0.0.4")

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]


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

    serving = ChatServing(engine, model_name, model_version, max_batch=max_batch, batch_window_ms=batch_window_ms)
    app = Starlette(routes=routes(serving), lifespan=serving.lifespan, middleware=middleware(api_key))
    app.state.metrics = serving.metrics
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
