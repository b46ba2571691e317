"""The real-time endpoint speaks the OpenAI API (the official client works), batches concurrent requests, and
answers bad input with a clear 400."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from resources.model_source.tiny_model import build_tiny_model
from tests.helpers import serving_in_a_thread
from waldinger_runtime.engine import ChatRequest, TransformersEngine
from waldinger_runtime.openai_server import create_app

MODEL = "waldinger-tiny-mistral"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> TransformersEngine:
    return TransformersEngine(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture(scope="module")
def base_url(engine: TransformersEngine) -> Iterator[str]:
    with serving_in_a_thread(create_app(engine, MODEL, "7", max_batch=16, batch_window_ms=20)) as url:
        yield url


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_official_openai_client_works(base_url: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key="not-needed-locally", max_retries=0)
    assert [m.id for m in client.models.list().data] == [MODEL]
    messages = [{"role": "user", "content": "Summarize the nightly batch."}]
    first = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10)
    second = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10)
    assert first.choices[0].message.role == "assistant"
    assert first.choices[0].message.content == second.choices[0].message.content, "greedy: same reply every time"
    assert first.usage.completion_tokens <= 10 and first.usage.prompt_tokens > 0
    assert first.choices[0].finish_reason in {"stop", "length"}


def test_concurrent_requests_are_batched_and_match_one_at_a_time(base_url: str, engine: TransformersEngine) -> None:
    prompts = [f"Question number {i}: what changed in the warehouse?" for i in range(8)]
    expected = [
        engine.generate([ChatRequest(({"role": "user", "content": p},), max_tokens=6)])[0].text for p in prompts
    ]
    largest_before = engine.stats.largest_batch
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda p: post(
                    f"{base_url}/v1/chat/completions",
                    {"model": MODEL, "messages": [{"role": "user", "content": p}], "max_tokens": 6},
                ),
                prompts,
            )
        )
    assert [status for status, _ in responses] == [200] * 8
    assert [body["choices"][0]["message"]["content"] for _, body in responses] == expected
    assert engine.stats.largest_batch > max(1, largest_before), "concurrent requests ran as one batch"


def test_a_greedy_request_batched_with_sampled_ones_gets_its_greedy_answer(engine: TransformersEngine) -> None:
    temperatures = (0.0, 1.5, 0.0, 1.0, 1.5, 0.0)
    prompts = [f"Request {i}: which {'late ' * i}partitions failed?" for i in range(len(temperatures))]
    greedy = [i for i, t in enumerate(temperatures) if t == 0]
    expected = [
        engine.generate([ChatRequest(({"role": "user", "content": prompts[i]},), max_tokens=8)])[0].text for i in greedy
    ]
    # The batch closes when max_batch requests are in or the window ends: with max_batch = every request and a
    # window far longer than they take to arrive, they all land in one window (checked below, from the metrics).
    app = create_app(engine, MODEL, "7", max_batch=len(prompts), batch_window_ms=30_000)
    bodies = [
        {"model": MODEL, "messages": [{"role": "user", "content": p}], "max_tokens": 8, "temperature": t}
        for p, t in zip(prompts, temperatures, strict=True)
    ]
    with serving_in_a_thread(app) as url, ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(lambda body: post(f"{url}/v1/chat/completions", body), bodies))
    assert app.state.metrics.batch_sizes == [len(bodies)], "all the requests ran in one batching window"
    assert [status for status, _ in responses] == [200] * len(bodies)
    answers = [body["choices"][0]["message"]["content"] for _, body in responses]
    assert [answers[i] for i in greedy] == expected


def test_health_and_prometheus_metrics(base_url: str) -> None:
    with urllib.request.urlopen(f"{base_url}/health", timeout=10) as response:
        health = json.loads(response.read())
    assert health == {"status": "ok", "model": MODEL, "version": "7", "engine": "transformers", "pid": os.getpid()}
    post(f"{base_url}/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert f'vllm:prompt_tokens_total{{model_name="{MODEL}"}}' in text
    assert "vllm:e2e_request_latency_seconds_count" in text
    assert "vllm:num_requests_running" in text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"messages": []}, 400, "non-empty list"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 400, "role"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": True}, 400, "stream"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x" * 5000}]}, 400, "context window"),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}, 404, "not served here"),
    ],
)
def test_bad_requests_get_a_clear_error(base_url: str, body: dict, status: int, message: str) -> None:
    code, answer = post(f"{base_url}/v1/chat/completions", body)
    assert code == status
    assert message in answer["error"]["message"]
