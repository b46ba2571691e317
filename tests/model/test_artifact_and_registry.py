"""The tiny model artifact (deterministic, loadable, chat-capable), its validation, and the embedded registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from resources.model_registry.embedded import (
    ARCHIVED,
    PRODUCTION,
    SHA256_TAG,
    EmbeddedModelRegistry,
    RegistryError,
)
from resources.model_source.tiny_model import build_tiny_model
from waldinger_runtime.artifact import ArtifactError, artifact_sha256, validate_artifact, verify_sha256

NAME = "waldinger-tiny-mistral"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_tiny_model_is_the_same_bytes_every_build(tiny_model: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    assert artifact_sha256(again) == artifact_sha256(tiny_model)
    config = validate_artifact(tiny_model)
    assert config["model_type"] == "mistral" and config["architectures"] == ["MistralForCausalLM"]


def test_tiny_model_loads_and_answers_a_chat_prompt_greedily(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Résumé the café report"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == "<s>[INST] Be brief.\n\nRésumé the café report [/INST]"
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    first = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    second = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert first.shape[1] > inputs["input_ids"].shape[1]
    assert first.tolist() == second.tolist()


def test_missing_config_names_the_file(tiny_model: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(tiny_model, tmp_path / "broken"))
    (broken / "config.json").unlink()
    with pytest.raises(ArtifactError, match=r"config\.json is missing"):
        validate_artifact(broken)


def test_truncated_weights_name_the_file_and_the_shortfall(tiny_model: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(tiny_model, tmp_path / "broken"))
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(ArtifactError, match=r"model\.safetensors is truncated"):
        validate_artifact(broken)


def test_wrong_hash_is_reported(tiny_model: Path) -> None:
    with pytest.raises(ArtifactError, match="does not match its registered hash"):
        verify_sha256(tiny_model, "0" * 64)


def test_registering_the_same_bytes_twice_makes_one_version(tiny_model: Path, tmp_path: Path) -> None:
    registry = EmbeddedModelRegistry(tmp_path / "registry")
    first, created = registry.register(NAME, tiny_model, {"source": "tiny"}, {"code_version": "abc123"})
    again, created_again = registry.register(NAME, tiny_model, {"source": "tiny"}, {"code_version": "def456"})
    assert (created, created_again) == (True, False)
    assert again == first and first.version == "1"
    assert first.tags[SHA256_TAG] == artifact_sha256(tiny_model)
    verify_sha256(Path(first.path), first.sha256)
    assert [v.version for v in registry.list_versions(NAME)] == ["1"]


def test_a_failed_registration_leaves_no_version(tiny_model: Path, tmp_path: Path) -> None:
    registry = EmbeddedModelRegistry(tmp_path / "registry")
    broken = Path(shutil.copytree(tiny_model, tmp_path / "broken"))
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="no tokenizer"):
        registry.register(NAME, broken, {}, {})
    assert registry.list_versions(NAME) == []

    # A failure in the middle of copying (a dangling link the copy cannot follow) leaves nothing half-made.
    failing = Path(shutil.copytree(tiny_model, tmp_path / "failing"))
    (failing / "zz_extra.bin").symlink_to(tmp_path / "does-not-exist")
    with pytest.raises(shutil.Error):
        registry.register(NAME, failing, {}, {})
    assert registry.list_versions(NAME) == []
    assert not [p for p in (tmp_path / "registry" / NAME).iterdir() if p.name != ".lock"]


def test_promotion_rollback_and_archive(tiny_model: Path, tmp_path: Path) -> None:
    registry = EmbeddedModelRegistry(tmp_path / "registry")
    registry.register(NAME, tiny_model, {}, {})
    changed = Path(shutil.copytree(tiny_model, tmp_path / "v2"))
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-6}, indent=2))
    v2, created = registry.register(NAME, changed, {}, {})
    assert created and v2.version == "2"

    registry.promote(NAME, "1", run_id="run-a")
    registry.promote(NAME, "2", run_id="run-b")
    assert registry.production(NAME).version == "2"
    assert [v.stage for v in registry.list_versions(NAME)] == ["None", PRODUCTION]

    rolled_back = registry.rollback(NAME, run_id="run-c")
    assert rolled_back.version == "1" and registry.production(NAME).version == "1"
    history = registry.promotions(NAME)
    assert [(p["version"], p["previous"], p["run_id"]) for p in history] == [
        ("1", None, "run-a"),
        ("2", "1", "run-b"),
        ("1", "2", "run-c"),
    ]
    assert history[-1]["reason"] == "rollback from 2"

    with pytest.raises(RegistryError, match="in production"):
        registry.archive(NAME, "1")
    assert registry.archive(NAME, "2").stage == ARCHIVED
    with pytest.raises(RegistryError, match="archived"):
        registry.promote(NAME, "2")
    with pytest.raises(RegistryError, match="no version '9'"):
        registry.get(NAME, "9")


def test_an_evaluation_lives_in_version_json_and_an_entry_from_before_evaluations_still_reads(
    tiny_model: Path, tmp_path: Path
) -> None:
    registry = EmbeddedModelRegistry(tmp_path / "registry")
    version, _ = registry.register(NAME, tiny_model, {"source": "tiny"}, {})
    entry = Path(version.path).parent / "version.json"
    before = json.loads(entry.read_text())
    for key in ("metrics", "evaluated_on"):  # as a version registered before evaluations were stored
        before.pop(key)
    entry.write_text(json.dumps(before))
    assert (registry.get(NAME, "1").metrics, registry.get(NAME, "1").evaluated_on) == ({}, None)

    registry.record_evaluation(NAME, "1", {"exact_match": 0.953, "parse_rate": 1}, evaluated_on="tickets-v3")
    stored = json.loads(entry.read_text())
    assert (stored["metrics"], stored["evaluated_on"]) == ({"exact_match": 0.953, "parse_rate": 1.0}, "tickets-v3")
    assert stored["tags"] == before["tags"] and stored["stage"] == before["stage"]
    assert not list(entry.parent.glob(".*.tmp")), "written through a temporary file, then renamed into place"


def test_a_corrupted_evaluation_in_version_json_is_a_corrupted_entry(tiny_model: Path, tmp_path: Path) -> None:
    registry = EmbeddedModelRegistry(tmp_path / "registry")
    version, _ = registry.register(NAME, tiny_model, {}, {})
    registry.record_evaluation(NAME, "1", {"exact_match": 0.9}, evaluated_on="tickets-v3")
    entry = Path(version.path).parent / "version.json"
    entry.write_text(entry.read_text().replace("0.9", '"high"'))
    with pytest.raises(
        RegistryError, match=r"is corrupted \(Metric exact_match is 'high'; a metric is a finite number"
    ):
        registry.get(NAME, "1")
