"""The settings the deployables read from their own environment (as vLLM reads VLLM_API_KEY)."""

import os

# The bearer key the local OpenAI server requires on /v1/*; handed over through the environment, never argv.
SERVING_API_KEY_VARIABLE = "WALDINGER_SERVING_API_KEY"


def serving_api_key() -> str | None:
    return os.environ.get(SERVING_API_KEY_VARIABLE) or None
