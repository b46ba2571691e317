"""The serving container's entrypoint: waldinger_runtime.container_entrypoint as pure functions, on files and
as `main`, and runtime/container/entrypoint.sh as a process (with a stand-in python3 that records its call)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.azure_ml import RG, SUB, WS
from waldinger_runtime import container_entrypoint
from waldinger_runtime.artifact import ArtifactError, artifact_sha256
from waldinger_runtime.container_entrypoint import (
    ensure_artifact,
    parse_args,
    parse_model_uri,
    vllm_server_command,
)

NAME = "mistral-7b-instruct"
SHA7 = hashlib.sha256(b"version 7").hexdigest()
ENTRYPOINT_SH = Path(__file__).parents[2] / "runtime" / "container" / "entrypoint.sh"


# --------------------------------------------------------------------------------------
# The container's entrypoint
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("azureml:mistral-7b-instruct:7", (None, "mistral-7b-instruct", "7")),
        ("azureml://registries/waldinger-reg/models/mistral-7b-instruct/versions/12", ("waldinger-reg", NAME, "12")),
    ],
)
def test_parse_model_uri(uri: str, expected: tuple) -> None:
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "mistral-7b-instruct:7",
        "azureml:mistral-7b-instruct",
        "azureml:mistral-7b-instruct@latest",
        "azureml:mistral-7b-instruct:",
        "azureml://registries/r/models/m",
        "azureml://registries/r/models/m/versions/1/extra",
        "https://example.com/model",
    ],
)
def test_parse_model_uri_refuses_unpinned_or_unknown_uris(uri: str) -> None:
    with pytest.raises(ValueError, match="azureml:<name>:<version>"):
        parse_model_uri(uri)


def test_vllm_server_command() -> None:
    assert vllm_server_command(Path("/models/m/7/model"), NAME, "7", 8000) == [
        "python",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        "/models/m/7/model",
        "--served-model-name",
        NAME,
        f"{NAME}:7",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--generation-config",
        "vllm",
        "--dtype",
        "auto",
    ]
    command = vllm_server_command("/m", NAME, "7", 9000, max_model_len=8192, extra_args=["--max-num-seqs", "64"])
    assert command[command.index("--port") + 1] == "9000"
    assert command[command.index("--max-model-len") + 1] == "8192"
    assert command[-2:] == ["--max-num-seqs", "64"]


def test_entrypoint_flags_and_passthrough_vllm_args() -> None:
    args = parse_args(
        [
            *("--model-uri", f"azureml:{NAME}:7", "--served-model-name", NAME, "--sha256", SHA7),
            *("--subscription-id", SUB, "--resource-group", RG, "--workspace", WS),
            *("--max-model-len", "4096", "--", "--max-num-seqs", "64"),
        ]
    )
    assert (args.model_uri, args.port, args.download_dir, args.max_model_len) == (
        f"azureml:{NAME}:7",
        8000,
        Path("/models"),
        4096,
    )
    assert args.vllm_args == ["--max-num-seqs", "64"]


def write_artifact(folder: Path, weights: bytes = b"weights") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "mistral"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_ensure_artifact_downloads_verifies_and_reuses(tmp_path: Path) -> None:
    registered = write_artifact(tmp_path / "registered" / "model")
    sha = artifact_sha256(registered)
    downloads: list[Path] = []

    def download(target: Path) -> None:  # what azure-ai-ml's models.download does: <target>/<name>/<folder>
        downloads.append(target)
        shutil.copytree(registered, target / NAME / "model")

    target = tmp_path / "models" / NAME / "7"
    artifact = ensure_artifact(target, sha, download)
    assert artifact == target / NAME / "model" and artifact_sha256(artifact) == sha
    assert ensure_artifact(target, sha, download) == artifact
    assert downloads == [target]  # the second start reused the verified files

    (artifact / "model.safetensors").write_bytes(b"half a download")
    assert ensure_artifact(target, sha, download) == artifact
    assert len(downloads) == 2 and artifact_sha256(artifact) == sha


def test_ensure_artifact_refuses_bytes_that_do_not_match(tmp_path: Path) -> None:
    def download(target: Path) -> None:
        write_artifact(target / NAME / "model", weights=b"tampered")

    with pytest.raises(ArtifactError, match="does not match its registered hash"):
        ensure_artifact(tmp_path / "models" / NAME / "7", SHA7, download)


def test_ensure_artifact_refuses_a_download_without_config(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"no config\.json"):
        ensure_artifact(tmp_path / "t", SHA7, lambda target: (target / "weights.bin").write_bytes(b"x"))


def test_entrypoint_main_execs_vllm_on_the_verified_artifact(tmp_path: Path, monkeypatch) -> None:
    # A replica restarting on the same disk: the version is already there, so nothing is downloaded.
    artifact = write_artifact(tmp_path / "models" / NAME / "7" / NAME / "model")
    executed: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda file, argv: executed.append(argv))
    container_entrypoint.main(
        [
            *("--model-uri", f"azureml:{NAME}:7", "--served-model-name", NAME, "--sha256", artifact_sha256(artifact)),
            *("--subscription-id", SUB, "--resource-group", RG, "--workspace", WS),
            *("--download-dir", str(tmp_path / "models"), "--", "--max-num-seqs", "64"),
        ]
    )
    assert executed == [
        vllm_server_command(artifact, NAME, "7", 8000, extra_args=["--max-num-seqs", "64"], python=sys.executable)
    ]


def test_entrypoint_main_refuses_a_bad_uri_before_any_download(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not a pinned Azure ML model version"):
        container_entrypoint.main(
            [
                *("--model-uri", f"azureml:{NAME}@latest", "--served-model-name", NAME, "--sha256", SHA7),
                *("--subscription-id", SUB, "--resource-group", RG, "--workspace", WS),
                *("--download-dir", str(tmp_path / "models")),
            ]
        )
    assert not (tmp_path / "models").exists()


# --------------------------------------------------------------------------------------
# entrypoint.sh, run as a process with a stand-in python3 that records how it was called
# --------------------------------------------------------------------------------------
ENTRYPOINT_ENV = {
    "WALDINGER_MODEL_URI": f"azureml:{NAME}:7",
    "WALDINGER_MODEL_NAME": NAME,
    "WALDINGER_ARTIFACT_SHA256": SHA7,
    "AZURE_SUBSCRIPTION_ID": SUB,
    "AZURE_RESOURCE_GROUP": RG,
    "AZUREML_WORKSPACE": WS,
}


def run_entrypoint(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "python3-called-with"
    stand_in = bin_dir / "python3"
    stand_in.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}'\n")
    stand_in.chmod(0o755)
    result = subprocess.run(
        [shutil.which("bash"), str(ENTRYPOINT_SH), *args],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, record


@pytest.mark.parametrize("missing", [("WALDINGER_ARTIFACT_SHA256",), ("AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE")])
def test_entrypoint_sh_names_every_missing_variable_before_starting_python(tmp_path: Path, missing: tuple) -> None:
    env = {k: v for k, v in ENTRYPOINT_ENV.items() if k not in missing}
    result, record = run_entrypoint(tmp_path, env)
    assert result.returncode == 64
    assert f"not set: {' '.join(missing)}." in result.stderr
    assert not record.exists()


def test_entrypoint_sh_refuses_an_empty_variable(tmp_path: Path) -> None:
    result, record = run_entrypoint(tmp_path, {**ENTRYPOINT_ENV, "WALDINGER_MODEL_URI": ""})
    assert result.returncode == 64 and "not set: WALDINGER_MODEL_URI." in result.stderr
    assert not record.exists()


def test_entrypoint_sh_turns_the_env_into_flags(tmp_path: Path) -> None:
    env = {**ENTRYPOINT_ENV, "WALDINGER_MAX_MODEL_LEN": "8192"}
    result, record = run_entrypoint(tmp_path, env, "--", "--max-num-seqs", "64")
    assert result.returncode == 0, result.stderr
    argv = record.read_text().splitlines()
    assert argv[:2] == ["-m", "waldinger_runtime.container_entrypoint"]
    args = parse_args(argv[2:])  # the flags the script passes are the ones the module accepts
    assert (args.model_uri, args.served_model_name, args.sha256) == (f"azureml:{NAME}:7", NAME, SHA7)
    assert (args.subscription_id, args.resource_group, args.workspace) == (SUB, RG, WS)
    assert (args.max_model_len, args.port, args.download_dir) == (8192, 8000, Path("/models"))
    assert args.vllm_args == ["--max-num-seqs", "64"]


def test_entrypoint_sh_runs_any_other_command_as_given(tmp_path: Path) -> None:
    # Azure ML command jobs (the batch job) bring their own command and none of the serving env.
    result, record = run_entrypoint(tmp_path, {}, "python3", "-m", "waldinger_runtime.batch_job", "--x", "1")
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == ["-m", "waldinger_runtime.batch_job", "--x", "1"]
