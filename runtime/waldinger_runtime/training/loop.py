"""Supervised fine-tuning of a causal LM on (prompt, expected answer) pairs: the loss is on the answer tokens only,
the prompt is the model's own chat template (as the engine renders it when serving), fixed seeds throughout.

Two methods, one loop: `full` trains every weight (the tiny local base: its weights are random, so LoRA on them
learns little), `lora` trains low-rank adapters with peft (Mistral-7B-Instruct in prod) and merges them into the
weights at the end, so the saved artifact is plain weights that vLLM and the transformers engine serve as is.
The learning rate warms up linearly over the first 5% of the steps, then follows a cosine down to zero.
"""

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

FULL = "full"
LORA = "lora"
METHODS = (FULL, LORA)
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
IGNORE_INDEX = -100


@dataclass(frozen=True)
class TrainingParameters:
    method: str = FULL
    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_share: float = 0.05
    seed: int = 20261202
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be at least 1 (got {self.steps} and {self.batch_size})")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EncodedExample:
    prompt_ids: list[int]
    answer_ids: list[int]


@dataclass(frozen=True)
class TrainingOutcome:
    steps: int
    seconds: float
    final_loss: float  # mean of the last 5% of the steps' losses
    trainable_parameters: int
    total_parameters: int


def chat_messages(row: dict) -> list[dict]:
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return [*messages, {"role": "user", "content": row["prompt"]}]


def encode_examples(tokenizer, rows: Sequence[dict]) -> list[EncodedExample]:
    """The prompt as the chat template renders it for generation, then the answer and the end-of-sequence token."""
    encoded = []
    for row in rows:
        prompt_ids = tokenizer.apply_chat_template(
            chat_messages(row), add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        answer_ids = tokenizer(row["expected"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append(EncodedExample(list(prompt_ids), answer_ids))
    return encoded


def learning_rate_factor(step: int, steps: int, warmup_share: float) -> float:
    warmup = max(1, round(steps * warmup_share))
    return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps)))


def _batch_tensors(examples: Sequence[EncodedExample], pad_id: int):
    import torch

    length = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    input_ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), length), dtype=torch.long)
    for row, example in enumerate(examples):
        sequence = example.prompt_ids + example.answer_ids
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        labels[row, len(example.prompt_ids) : len(sequence)] = torch.tensor(example.answer_ids)
        attention[row, : len(sequence)] = 1
    return input_ids, labels, attention


def prepare_model(model, parameters: TrainingParameters):
    """The model to train: itself (full) or wrapped with LoRA adapters (lora)."""
    if parameters.method == FULL:
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=parameters.lora_rank,
        lora_alpha=parameters.lora_alpha,
        lora_dropout=parameters.lora_dropout,
        target_modules=list(LORA_TARGET_MODULES),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def merged(model, parameters: TrainingParameters):
    """Plain weights to save: LoRA adapters merged in (one artifact for both deployments)."""
    return model.merge_and_unload() if parameters.method == LORA else model


def train(
    model,
    examples: Sequence[EncodedExample],
    parameters: TrainingParameters,
    pad_id: int,
    on_step: Callable[[int, float, float], None] = lambda _step, _loss, _lr: None,
) -> TrainingOutcome:
    """Trains `model` in place; `on_step(step, loss, learning_rate)` after every step."""
    import torch

    if not examples:
        raise ValueError("no training examples: the train split is empty")
    torch.manual_seed(parameters.seed)
    sampler = random.Random(parameters.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=parameters.learning_rate, weight_decay=parameters.weight_decay, betas=(0.9, 0.98)
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, parameters.steps, parameters.warmup_share)
    )
    device = next(model.parameters()).device
    batch_size = min(parameters.batch_size, len(examples))
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    for step in range(parameters.steps):
        input_ids, labels, attention = _batch_tensors(sampler.sample(list(examples), batch_size), pad_id)
        loss = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        learning_rate = schedule.get_last_lr()[0]
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.item()))
        on_step(step, losses[-1], learning_rate)
    model.eval()
    tail = losses[-max(1, len(losses) // 20) :]
    return TrainingOutcome(
        steps=parameters.steps,
        seconds=time.perf_counter() - started,
        final_loss=sum(tail) / len(tail),
        trainable_parameters=sum(p.numel() for p in trainable),
        total_parameters=sum(p.numel() for p in model.parameters()),
    )
