"""Getting the model artifact onto local disk: the tiny model (built, never downloaded) locally; in prod a
local folder, a Hugging Face repository, or an Azure ML registry model."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from resources.model_source.tiny_model import TINY_MODEL_SEED, build_tiny_model
from waldinger_runtime.artifact import validate_artifact

AZUREML_MODEL_URI = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$"
)
HF_WEIGHT_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja"]


def describe(kind: str, value: str | None) -> str:
    return {"tiny": f"tiny-mistral(seed={TINY_MODEL_SEED})", "path": f"path:{value}", "huggingface": f"hf:{value}"}.get(
        kind, f"{kind}:{value}"
    )


def fetch_source(kind: str, value: str | None, cache_dir: Path) -> Path:
    """A validated local artifact folder for the configured source."""
    cache_dir = Path(cache_dir)
    if kind == "tiny":
        target = cache_dir / f"tiny-mistral-{TINY_MODEL_SEED}"
        if not target.is_dir():
            staging = cache_dir / f".tiny-mistral-{TINY_MODEL_SEED}.{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            build_tiny_model(staging)
            try:
                os.rename(staging, target)
            except OSError:  # another process built it first: same bytes
                shutil.rmtree(staging, ignore_errors=True)
        artifact = target
    elif kind == "path":
        artifact = Path(value).expanduser()
    elif kind == "huggingface":
        from huggingface_hub import snapshot_download

        artifact = Path(
            snapshot_download(
                repo_id=value, local_dir=cache_dir / value.replace("/", "--"), allow_patterns=HF_WEIGHT_PATTERNS
            )
        )
    elif kind == "azureml":
        artifact = _download_azureml(value, cache_dir)
    else:
        raise ValueError(f"unknown model source kind {kind!r}")
    validate_artifact(artifact)
    return artifact


def _download_azureml(uri: str, cache_dir: Path) -> Path:
    match = AZUREML_MODEL_URI.match(uri)
    if not match:
        raise ValueError(
            f"WALDINGER_MODEL_AZUREML_URI={uri!r} is not azureml://registries/<registry>/models/<name>/versions/<version>"
        )
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    client = MLClient(credential=DefaultAzureCredential(), registry_name=match["registry"])
    target = cache_dir / "azureml" / match["registry"] / match["name"] / match["version"]
    if not target.is_dir():
        client.models.download(name=match["name"], version=match["version"], download_path=str(target))
    # The SDK nests the files under the model's name.
    nested = [p for p in target.rglob("config.json")]
    return nested[0].parent if nested else target
