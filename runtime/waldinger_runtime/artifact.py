"""A model artifact on disk (weights, config, tokenizer, chat template): its identity (sha256 over every file)
and its validation, with errors that name the file and what is wrong. Pure file reading; no torch."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
CHUNK = 1 << 20


class ArtifactError(ValueError):
    """The artifact cannot be used; the message names the file and what is wrong."""


def artifact_files(artifact_dir: Path) -> list[Path]:
    """Every file of the artifact, in a stable order (hidden files excluded)."""
    artifact_dir = Path(artifact_dir)
    return sorted(
        p
        for p in artifact_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(artifact_dir).parts)
    )


def artifact_sha256(artifact_dir: Path) -> str:
    """One hash for the whole artifact: each file's relative path and bytes, in path order."""
    artifact_dir = Path(artifact_dir)
    digest = hashlib.sha256()
    for path in artifact_files(artifact_dir):
        relative = path.relative_to(artifact_dir).as_posix().encode()
        digest.update(len(relative).to_bytes(4, "big") + relative)
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _check_safetensors(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ArtifactError(f"{path} is truncated: {size} bytes, not even a safetensors header.")
        (header_length,) = struct.unpack("<Q", prefix)
        if 8 + header_length > size:
            raise ArtifactError(f"{path} is truncated: its header needs {header_length} bytes, the file has {size}.")
        try:
            header = json.loads(handle.read(header_length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ArtifactError(f"{path} is not a safetensors file: its header is not JSON ({error}).") from None
    needed = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + header_length + needed > size:
        raise ArtifactError(
            f"{path} is truncated: its tensors need {needed:,} bytes of data, the file holds "
            f"{size - 8 - header_length:,}. Rebuild or re-download the weights."
        )


def validate_artifact(artifact_dir: Path) -> dict:
    """Checks what loading needs is there and whole; returns the model config. Raises ArtifactError."""
    artifact_dir = Path(artifact_dir)
    if not artifact_dir.is_dir():
        raise ArtifactError(f"{artifact_dir} is not a directory; point the model source at the artifact's folder.")
    config_path = artifact_dir / "config.json"
    if not config_path.is_file():
        raise ArtifactError(f"{config_path} is missing: an artifact needs the model config (config.json).")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{config_path} is not valid JSON ({error}).") from None
    if "model_type" not in config:
        raise ArtifactError(f"{config_path} has no model_type; it is not a transformers model config.")
    weights = [p for pattern in WEIGHT_PATTERNS for p in artifact_dir.glob(pattern)]
    if not weights:
        raise ArtifactError(f"{artifact_dir} has no weights (*.safetensors or pytorch_model*.bin).")
    for path in weights:
        if path.suffix == ".safetensors":
            _check_safetensors(path)
        elif path.stat().st_size == 0:
            raise ArtifactError(f"{path} is empty.")
    if not any((artifact_dir / name).is_file() for name in TOKENIZER_FILES):
        raise ArtifactError(f"{artifact_dir} has no tokenizer ({' or '.join(TOKENIZER_FILES)}).")
    if not chat_template(artifact_dir):
        raise ArtifactError(
            f"{artifact_dir} has no chat template (chat_template.jinja, or chat_template in tokenizer_config.json)."
        )
    return config


def chat_template(artifact_dir: Path) -> str | None:
    template_file = Path(artifact_dir) / "chat_template.jinja"
    if template_file.is_file():
        return template_file.read_text()
    tokenizer_config = Path(artifact_dir) / "tokenizer_config.json"
    if tokenizer_config.is_file():
        try:
            return json.loads(tokenizer_config.read_text()).get("chat_template")
        except json.JSONDecodeError:
            return None
    return None


def verify_sha256(artifact_dir: Path, expected: str) -> None:
    actual = artifact_sha256(artifact_dir)
    if actual != expected:
        raise ArtifactError(
            f"{artifact_dir} does not match its registered hash: sha256 {actual}, registered {expected}. "
            "The files changed after registration; register the artifact again or restore it."
        )


def find_artifact_dir(root: Path) -> Path:
    """The downloaded folder that holds the model's config.json (the artifact the sha256 was computed over)."""
    found = sorted(Path(root).rglob("config.json"), key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise ArtifactError(f"{root} holds no config.json; the downloaded model version is not a transformers model.")
    return found[0].parent
