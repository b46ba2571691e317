"""The OpenAI API's wire format for this endpoint and the batch job: a chat completion body validated once, at the
edge, into a ChatRequest (an unsupported field is a BadRequest, not silence), and the JSON objects the API answers
with (`chat.completion`, the model list, an error)."""

from __future__ import annotations

import time
import uuid

from waldinger_runtime.engine import ChatRequest, ChatResult

ROLES = {"system", "user", "assistant"}
MAX_TOKENS_LIMIT = 4096


class BadRequest(ValueError):
    pass


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


def model_list(model_name: str, model_version: str, created: int, max_model_len: int) -> dict:
    """The `/v1/models` answer: the one model served, with vLLM's `root` and `max_model_len`."""
    entry = {"id": model_name, "object": "model", "created": created, "owned_by": "waldinger"}
    entry["root"] = f"{model_name}:{model_version}"
    entry["max_model_len"] = max_model_len
    return {"object": "list", "data": [entry]}


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
