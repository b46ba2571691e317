"""Loading a model artifact with the real loading code and asking it one chat question with greedy decoding."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

CHECK_MESSAGES = (
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "Summarize: the nightly batch finished and all partitions are green."},
)
CHECK_MAX_NEW_TOKENS = 16


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    token_ids: tuple[int, ...]
    load_seconds: float
    generate_seconds: float


def load_and_answer(artifact_dir: Path, max_new_tokens: int = CHECK_MAX_NEW_TOKENS) -> ChatAnswer:
    """transformers `from_pretrained` on the artifact, then a greedy chat completion."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # keeps run logs readable
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(artifact_dir)
    model = AutoModelForCausalLM.from_pretrained(artifact_dir).eval()
    loaded = time.perf_counter()
    inputs = tokenizer.apply_chat_template(
        list(CHECK_MESSAGES), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = output[0][inputs["input_ids"].shape[1] :]
    finished = time.perf_counter()
    return ChatAnswer(
        text=tokenizer.decode(new_tokens, skip_special_tokens=True),
        token_ids=tuple(int(t) for t in new_tokens),
        load_seconds=loaded - started,
        generate_seconds=finished - loaded,
    )
