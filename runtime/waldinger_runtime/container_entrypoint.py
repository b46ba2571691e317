"""The prod real-time container's entrypoint (runs inside the image of serving/container/, not in Dagster):
download the registered model version from Azure ML, check its bytes against the registered sha256, then
replace this process with vLLM's OpenAI-compatible server.

    python -m waldinger_runtime.container_entrypoint --model-uri azureml:mistral-7b-instruct:7 \\
        --served-model-name mistral-7b-instruct --sha256 <hex> \\
        --subscription-id S --resource-group RG --workspace WS [--max-model-len 8192] [-- <extra vLLM args>]

Everything comes in as flags (entrypoint.sh turns the container's env into flags); Azure credentials come from
DefaultAzureCredential, i.e. the app's managed identity.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from waldinger_runtime.artifact import ArtifactError, artifact_sha256, find_artifact_dir, verify_sha256

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}"
_VERSION = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_WORKSPACE_URI = re.compile(rf"^azureml:(?P<name>{_NAME}):(?P<version>{_VERSION})$")
_REGISTRY_URI = re.compile(
    rf"^azureml://registries/(?P<registry>{_NAME})/models/(?P<name>{_NAME})/versions/(?P<version>{_VERSION})$"
)


def parse_model_uri(uri: str) -> tuple[str | None, str, str]:
    """(registry or None for a workspace model, model name, version) of a pinned Azure ML model URI."""
    for pattern in (_WORKSPACE_URI, _REGISTRY_URI):
        match = pattern.match(uri.strip())
        if match:
            return match.groupdict().get("registry"), match["name"], match["version"]
    raise ValueError(
        f"Model URI {uri!r} is not a pinned Azure ML model version; use azureml:<name>:<version> for a workspace "
        "model or azureml://registries/<registry>/models/<name>/versions/<version> for a registry model "
        "(a label such as @latest is not accepted: the container must serve exactly the deployed version)."
    )


def vllm_server_command(
    model_dir: Path | str,
    served_model_name: str,
    version: str,
    port: int,
    max_model_len: int | None = None,
    extra_args: Sequence[str] = (),
    python: str = "python",
) -> list[str]:
    """The command that starts vLLM's OpenAI server on the artifact. The model answers to its name and to
    `<name>:<version>`, so `/v1/models` shows which version this revision serves."""
    command = [
        python,
        "-m",
        VLLM_SERVER_MODULE,
        "--model",
        str(model_dir),
        "--served-model-name",
        served_model_name,
        f"{served_model_name}:{version}",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--generation-config",
        "vllm",
        "--dtype",
        "auto",
    ]
    if max_model_len is not None:
        command += ["--max-model-len", str(max_model_len)]
    return command + list(extra_args)


def ensure_artifact(target: Path, sha256: str, download: Callable[[Path], None]) -> Path:
    """The verified artifact folder under `target`: reuses a complete earlier download (a restarted replica),
    otherwise downloads into an empty `target` and checks the bytes. Raises ArtifactError on a mismatch."""
    target = Path(target)
    if target.is_dir():
        try:
            existing = find_artifact_dir(target)
            if artifact_sha256(existing) == sha256:
                return existing
        except ArtifactError:
            pass
        shutil.rmtree(target)  # a partial or different download: start again
    target.mkdir(parents=True)
    download(target)
    artifact = find_artifact_dir(target)
    verify_sha256(artifact, sha256)
    return artifact


def azure_ml_download(
    registry: str | None, name: str, version: str, subscription_id: str, resource_group: str, workspace: str
) -> Callable[[Path], None]:
    def download(target: Path) -> None:
        from azure.ai.ml import MLClient
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        if registry:
            client = MLClient(credential, registry_name=registry, enable_telemetry=False, show_progress=False)
        else:
            client = MLClient(
                credential,
                subscription_id=subscription_id,
                resource_group_name=resource_group,
                workspace_name=workspace,
                enable_telemetry=False,
                show_progress=False,
            )
        client.models.download(name=name, version=version, download_path=str(target))

    return download


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m waldinger_runtime.container_entrypoint",
        description="Download a registered model version, verify it, and exec vLLM's OpenAI server on it. "
        "Arguments after `--` go to vLLM unchanged.",
    )
    parser.add_argument("--model-uri", required=True, help="azureml:<name>:<version> or azureml://registries/...")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--sha256", required=True, help="the registered artifact_sha256 of the version")
    parser.add_argument("--subscription-id", required=True)
    parser.add_argument("--resource-group", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--download-dir", type=Path, default=Path("/models"))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int, default=None)
    args = parser.parse_args(argv)
    args.vllm_args = extra
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        registry, name, version = parse_model_uri(args.model_uri)
    except ValueError as error:
        sys.exit(str(error))
    target = args.download_dir / name / version
    print(f"[waldinger] fetching {args.model_uri} into {target}", file=sys.stderr, flush=True)
    download = azure_ml_download(registry, name, version, args.subscription_id, args.resource_group, args.workspace)
    try:
        artifact = ensure_artifact(target, args.sha256, download)
    except ArtifactError as error:
        sys.exit(f"[waldinger] refusing to serve {args.model_uri}: {error}")
    command = vllm_server_command(
        artifact,
        args.served_model_name,
        version,
        args.port,
        args.max_model_len,
        args.vllm_args,
        python=sys.executable,
    )
    print(f"[waldinger] sha256 verified; starting: {' '.join(command)}", file=sys.stderr, flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
