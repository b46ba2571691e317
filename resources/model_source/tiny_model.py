"""The embedded default model: a tiny Mistral-architecture model (MistralForCausalLM) with a byte-level BPE
tokenizer and a Mistral-style chat template, built offline and deterministically from a seed: the same bytes on
every build, no download. It exercises the same loading, fine-tuning, registration and serving code as
Mistral-7B-Instruct. Its weights are random: it answers noise until the training job has fine-tuned it.

The tokenizer's merges are learned from text of the pipeline's task (resources.demo_tickets): the answers' JSON
skeleton and the tickets' words become single tokens, so an example is ~50 tokens instead of ~150 bytes, which
is what lets the tiny model learn the task in a couple of minutes on two CPU cores. Digits stay one token each
(an order number is copied digit by digit), and every byte is in the alphabet, so any text still round-trips.
The size (128 hidden x 4 layers) and the training schedule were measured in benchmarks/bench_training.py.
"""

from __future__ import annotations

from pathlib import Path

TINY_MODEL_SEED = 20261123
TINY_MODEL_NAME = "waldinger-tiny-mistral"

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]")
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2

# Mistral-7B-Instruct's format: <s>[INST] user [/INST] answer</s>[INST] ... A system message is folded into the
# first user turn, as Mistral's own template does.
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set system = messages | selectattr('role', 'equalto', 'system') | map(attribute='content') | join('\\n\\n') %}"
    "{% set first_user = namespace(done=false) %}"
    "{% for message in messages if message['role'] != 'system' %}"
    "{% if message['role'] == 'user' %}"
    "{% if system and not first_user.done %}{% set content = system + '\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% set first_user.done = true %}"
    "{{ '[INST] ' + content + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only system, user and assistant roles are supported') }}"
    "{% endif %}"
    "{% endfor %}"
)

TOKENIZER_VOCABULARY_SIZE = 1000
TINY_CONFIG = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
}


def build_tokenizer():
    """A byte-level BPE tokenizer trained on the task's text (see the module docstring); deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from resources.demo_tickets import tokenizer_corpus

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCABULARY_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=sorted(pre_tokenizers.ByteLevel.alphabet()),
        show_progress=False,
    )
    core.train_from_iterator(tokenizer_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        model_max_length=TINY_CONFIG["max_position_embeddings"],
    )
    tokenizer.chat_template = MISTRAL_CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(output_dir: Path, seed: int = TINY_MODEL_SEED) -> Path:
    """Writes config, safetensors weights, tokenizer and chat template to `output_dir`; same bytes every time."""
    import torch
    from transformers import GenerationConfig, MistralConfig, MistralForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # keeps run logs readable
    tokenizer = build_tokenizer()
    config = MistralConfig(
        vocab_size=len(tokenizer),
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
        tie_word_embeddings=False,
        sliding_window=None,
        **TINY_CONFIG,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = MistralForCausalLM(config).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config = GenerationConfig(
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=EOS_ID, do_sample=False, max_new_tokens=32
    )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    return output_dir
