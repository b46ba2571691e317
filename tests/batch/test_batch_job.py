"""The batch job script on the tiny model: OpenAI batch JSONL in and out, lines in = lines out, per-request
errors as 400 lines, greedy (same as the real-time path) unless a request asks for a temperature, and a crash
leaves no output file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resources.model_source.tiny_model import build_tiny_model
from tests.helpers import REPO_ROOT
from waldinger_runtime.batch_job import run_batch
from waldinger_runtime.engine import ChatRequest, TransformersEngine


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> TransformersEngine:
    return TransformersEngine(tiny_model)


def request(custom_id: str, content: str, max_tokens: int = 6, temperature: float | None = None) -> str:
    body = {"model": "tiny", "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    if temperature is not None:
        body["temperature"] = temperature
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


# Greedy and sampled requests interleaved, with two different temperatures among the sampled ones.
MIXED_TEMPERATURES = (0.0, 1.5, 0.0, 1.0, 1.5, 0.0)


def greedy_alone(engine: TransformersEngine, content: str, max_tokens: int) -> str:
    return engine.generate([ChatRequest(({"role": "user", "content": content},), max_tokens=max_tokens)])[0].text


def test_every_line_gets_an_answer_in_input_order(engine: TransformersEngine) -> None:
    lines = [
        request("a", "Summarize the churn dashboard."),
        "{not json",
        request("b", "x" * (engine.context_window + 10)),  # byte-level tokenizer: beyond the context window
        json.dumps({"custom_id": "c", "method": "POST", "url": "/v1/embeddings", "body": {}}),
        request("d", "Explain the cost report, please, in a longer way than the first one."),
        request("a", "the same custom_id again"),
        json.dumps({"custom_id": "e", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": []}}),
        "",
    ]
    outputs, figures = run_batch(engine, lines, batch_size=4, fingerprint="tiny:1")
    assert [o["custom_id"] for o in outputs] == ["a", "line-2", "b", "c", "d", "a", "e"]
    codes = [o["response"]["status_code"] for o in outputs]
    assert codes == [200, 400, 400, 400, 200, 400, 400]
    errors = {
        o["custom_id"]: o["response"]["body"]["error"]["code"] for o in outputs if o["response"]["status_code"] != 200
    }
    assert errors["b"] == "context_length_exceeded"
    assert outputs[5]["response"]["body"]["error"]["code"] == "duplicate"
    assert figures["rows"] == 7 and figures["rows_ok"] == 2 and figures["rows_failed"] == 5
    body = outputs[0]["response"]["body"]
    assert body["system_fingerprint"] == "tiny:1" and body["usage"]["completion_tokens"] <= 6
    assert figures["completion_tokens"] == sum(
        o["response"]["body"]["usage"]["completion_tokens"] for o in outputs if o["response"]["status_code"] == 200
    )


def test_batched_answers_equal_one_request_at_a_time(engine: TransformersEngine) -> None:
    prompts = [f"Question {i}: {'why ' * i}did the nightly load fail?" for i in range(6)]
    outputs, _ = run_batch(engine, [request(str(i), p) for i, p in enumerate(prompts)], batch_size=6, fingerprint="")
    alone = [engine.generate([ChatRequest(({"role": "user", "content": p},), max_tokens=6)])[0].text for p in prompts]
    assert [o["response"]["body"]["choices"][0]["message"]["content"] for o in outputs] == alone


def test_one_engine_call_decodes_each_request_with_its_own_temperature(engine: TransformersEngine) -> None:
    prompts = [f"Request {i}: {'which partitions are late? ' * (1 + i)}" for i in range(len(MIXED_TEMPERATURES))]
    chats = [
        ChatRequest(({"role": "user", "content": p},), max_tokens=8, temperature=t)
        for p, t in zip(prompts, MIXED_TEMPERATURES, strict=True)
    ]
    results = engine.generate(chats)
    assert [r.prompt_tokens for r in results] == [len(engine.prompt_ids(c.messages)) for c in chats], "request order"
    greedy = [i for i, t in enumerate(MIXED_TEMPERATURES) if t == 0]
    assert [results[i].text for i in greedy] == [greedy_alone(engine, prompts[i], 8) for i in greedy]
    sampled = [i for i, t in enumerate(MIXED_TEMPERATURES) if t > 0]
    assert any(results[i].text != greedy_alone(engine, prompts[i], 8) for i in sampled), "sampled ones still sample"


def _job(model: Path, requests: Path, output: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "waldinger_runtime.batch_job", "--model", str(model)]
    command += ["--input", str(requests), "--output", str(output), "--batch-size", "8"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


def test_the_script_writes_jsonl_and_a_crashing_engine_leaves_no_output(tiny_model: Path, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(request(f"r{i}", f"prompt {i}") for i in range(5)) + "\n")
    output = tmp_path / "out" / "results.jsonl"
    finished = _job(tiny_model, requests, output)
    assert finished.returncode == 0, finished.stderr
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"r{i}" for i in range(5)]
    assert json.loads(finished.stderr.strip().splitlines()[-1])["rows_ok"] == 5

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"truncated by a failing disk")
    crashed_output = tmp_path / "crashed" / "results.jsonl"
    crashed = _job(broken, requests, crashed_output)
    assert crashed.returncode != 0
    assert not crashed_output.exists()
    assert not (crashed_output.parent.exists() and any(crashed_output.parent.iterdir())), "no partial file either"


def test_the_script_keeps_greedy_lines_greedy_among_sampled_ones(
    tiny_model: Path, engine: TransformersEngine, tmp_path: Path
) -> None:
    prompts = [f"Line {i}: summarize the {'late ' * i}partitions." for i in range(len(MIXED_TEMPERATURES))]
    requests = tmp_path / "requests.jsonl"
    lines = [request(f"r{i}", p, 8, t) for i, (p, t) in enumerate(zip(prompts, MIXED_TEMPERATURES, strict=True))]
    requests.write_text("\n".join(lines) + "\n")
    output = tmp_path / "results.jsonl"
    finished = _job(tiny_model, requests, output)  # --batch-size 8: every line in one engine call
    assert finished.returncode == 0, finished.stderr
    answers = [json.loads(line)["response"]["body"]["choices"][0]["message"]["content"] for line in output.open()]
    greedy = [i for i, t in enumerate(MIXED_TEMPERATURES) if t == 0]
    assert [answers[i] for i in greedy] == [greedy_alone(engine, prompts[i], 8) for i in greedy]
