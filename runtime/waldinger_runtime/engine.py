"""One inference engine interface for real-time and batch serving: transformers (CPU or GPU) by default, vLLM
when it is installed and a GPU is there. Greedy decoding by default, so outputs are reproducible."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[dict, ...]
    max_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy


@dataclass(frozen=True)
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence) or "length"
    seconds: float = 0.0


@dataclass
class EngineStats:
    """Model runs: an engine call whose requests differ in sampling settings makes one run per setting."""

    batches: int = 0
    requests: int = 0
    largest_batch: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, size: int) -> None:
        with self.lock:
            self.batches += 1
            self.requests += size
            self.largest_batch = max(self.largest_batch, size)


class EngineError(RuntimeError):
    """The engine cannot serve a request (e.g. the prompt does not fit the context window)."""


def sampling_groups(requests: Sequence[ChatRequest]) -> list[list[int]]:
    """Indices of `requests` grouped by the sampling settings that one `generate` call applies to all of its rows
    (the temperature: 0 is greedy), groups in order of first appearance. A greedy request batched with sampled
    ones must still be greedy. max_tokens is not a sampling setting here: each row is cut to its own."""
    groups: dict[float, list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault(float(request.temperature), []).append(index)
    return list(groups.values())


def vllm_available() -> bool:
    """vLLM is an optional extra and needs a GPU; the transformers engine is used otherwise."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class TransformersEngine:
    """transformers `generate` over a batch of chat requests (left padding, greedy unless asked otherwise)."""

    name = "transformers"

    def __init__(self, artifact_dir: Path, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(artifact_dir, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(artifact_dir, dtype=dtype).to(self.device).eval()
        self.context_window = int(getattr(self.model.config, "max_position_embeddings", 4096))
        self.stats = EngineStats()
        self._lock = threading.Lock()  # one generate at a time; batching happens above this

    def prompt_ids(self, messages: Sequence[dict]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(encoded["input_ids"])

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Results in request order, each decoded with its own request's settings: requests with different
        sampling settings run as separate `generate` calls (see `sampling_groups`). Requests that cannot run raise
        EngineError for the whole call, before any runs: callers validate prompts first (see `prompt_ids`)."""
        if not requests:
            return []
        started = time.perf_counter()
        encoded = [self.prompt_ids(r.messages) for r in requests]
        for ids, request in zip(encoded, requests, strict=True):
            if len(ids) + request.max_tokens > self.context_window:
                raise EngineError(
                    f"prompt of {len(ids)} tokens + max_tokens {request.max_tokens} exceeds the context window "
                    f"of {self.context_window} tokens"
                )
        results: list[ChatResult | None] = [None] * len(requests)
        for group in sampling_groups(requests):
            alike = self._generate_alike([requests[i] for i in group], [encoded[i] for i in group], started)
            for index, result in zip(group, alike, strict=True):
                results[index] = result
        return results

    def _generate_alike(
        self, requests: list[ChatRequest], encoded: list[list[int]], started: float
    ) -> list[ChatResult]:
        """One `generate` over requests that share their sampling settings; `seconds` counts from `started`, the
        whole call's start, as that is how long these requests waited for their answers."""
        import torch

        temperature = requests[0].temperature
        greedy = temperature == 0
        batch = self.tokenizer.pad({"input_ids": encoded}, return_tensors="pt").to(self.device)
        with self._lock, torch.no_grad():
            output = self.model.generate(
                **batch,
                max_new_tokens=max(r.max_tokens for r in requests),
                do_sample=not greedy,
                temperature=None if greedy else temperature,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        self.stats.record(len(requests))
        seconds = time.perf_counter() - started
        results = []
        width = batch["input_ids"].shape[1]
        eos = self.tokenizer.eos_token_id
        for row, (ids, request) in enumerate(zip(encoded, requests, strict=True)):
            generated = output[row][width:].tolist()[: request.max_tokens]
            finish = "length"
            if eos in generated:
                generated = generated[: generated.index(eos)]
                finish = "stop"
            results.append(
                ChatResult(
                    text=self.tokenizer.decode(generated, skip_special_tokens=True),
                    prompt_tokens=len(ids),
                    completion_tokens=len(generated),
                    finish_reason=finish,
                    seconds=seconds,
                )
            )
        return results


class VLLMEngine:
    """vLLM's offline engine over the same artifact (GPU only; the optional `vllm` extra)."""

    name = "vllm"

    def __init__(self, artifact_dir: Path) -> None:
        from vllm import LLM

        self.llm = LLM(model=str(artifact_dir), tokenizer=str(artifact_dir), enforce_eager=False)
        self.tokenizer = self.llm.get_tokenizer()
        self.context_window = int(self.llm.llm_engine.model_config.max_model_len)
        self.stats = EngineStats()

    def prompt_ids(self, messages: Sequence[dict]) -> list[int]:
        return self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        from vllm import SamplingParams

        started = time.perf_counter()
        params = [SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature) for r in requests]
        outputs = self.llm.chat([list(r.messages) for r in requests], sampling_params=params, use_tqdm=False)
        self.stats.record(len(requests))
        seconds = time.perf_counter() - started
        return [
            ChatResult(
                text=o.outputs[0].text,
                prompt_tokens=len(o.prompt_token_ids),
                completion_tokens=len(o.outputs[0].token_ids),
                finish_reason="stop" if o.outputs[0].finish_reason == "stop" else "length",
                seconds=seconds,
            )
            for o in outputs
        ]


def load_engine(artifact_dir: Path, prefer: str = "auto"):
    """`auto` takes vLLM where it can run (installed, GPU present), transformers otherwise."""
    if prefer == "vllm" or (prefer == "auto" and vllm_available()):
        return VLLMEngine(artifact_dir)
    return TransformersEngine(artifact_dir)
