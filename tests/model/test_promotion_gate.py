"""Promotion through the evaluation gate, on the embedded registry with the tiny model (real hash, load and greedy
answer): refused promotions change nothing, overrides are recorded with their reason, and the production_model
asset carries the gate's result; on the Azure ML registry (fake HTTP boundary) a refusal downloads nothing."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
from dagster import materialize

from resources.environment import SettingsError
from resources.model_registry import EmbeddedModelRegistryResource
from resources.model_registry.azure import AzureMLModelRegistry
from resources.model_registry.embedded import PRODUCTION, EmbeddedModelRegistry
from resources.model_source.tiny_model import build_tiny_model
from tests.fakes.azure_ml import (
    RG,
    SUB,
    WS,
    FakeCredential,
    FakeTransport,
    block_real_network,
    install_routes,
    patch_blob_storage,
)
from waldinger_assets.model.assets import production_model
from waldinger_assets.model.promotion import PromotionError, promote_verified

NAME = "waldinger-tiny-mistral"
GOOD = {"exact_match": 0.95, "parse_rate": 1.0, "latency_p50_ms": 38.0}
WEAK = {"exact_match": 0.412, "parse_rate": 0.97, "latency_p50_ms": 36.0}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def default_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALDINGER_PROMOTION_MIN_EXACT_MATCH", raising=False)
    monkeypatch.delenv("WALDINGER_PROMOTION_MAX_REGRESSION", raising=False)


def variant(tiny_model: Path, folder: Path, rms_norm_eps: float) -> Path:
    changed = Path(shutil.copytree(tiny_model, folder))
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "rms_norm_eps": rms_norm_eps}))
    return changed


@pytest.fixture
def two_versions(tiny_model: Path, tmp_path: Path) -> EmbeddedModelRegistry:
    """Version 1 evaluated (GOOD) and in production; version 2 registered and evaluated (WEAK)."""
    registry = EmbeddedModelRegistry(tmp_path / "registry")
    registry.register(NAME, tiny_model, {"source": "tiny"}, {})
    registry.register(NAME, variant(tiny_model, tmp_path / "v2", 1e-6), {"source": "tiny"}, {})
    registry.record_evaluation(NAME, "1", GOOD, evaluated_on="tickets-v3")
    registry.record_evaluation(NAME, "2", WEAK, evaluated_on="tickets-v3")
    promote_verified(registry, NAME, "1", run_id="run-a")
    return registry


def registry_files(registry: EmbeddedModelRegistry) -> dict[str, bytes]:
    return {str(p.relative_to(registry.root)): p.read_bytes() for p in registry.root.rglob("*") if p.is_file()}


def test_a_refused_promotion_names_the_reasons_and_changes_nothing(two_versions: EmbeddedModelRegistry) -> None:
    registry = two_versions
    before = registry_files(registry)
    with pytest.raises(PromotionError) as refused:
        promote_verified(registry, NAME, "2", run_id="run-b")
    message = str(refused.value)
    assert f"{NAME} version 2 was not promoted: the evaluation gate refused it" in message
    assert "exact match 0.412 is below the threshold 0.900" in message
    assert "exact match 0.412 is worse than production version 1's 0.950 by more than the margin 0.010" in message
    assert "--override-gate --reason" in message
    assert refused.value.decision is not None and not refused.value.decision.passed
    assert registry_files(registry) == before
    assert registry.production(NAME).version == "1"


def test_a_version_never_evaluated_is_refused_until_it_is(tiny_model: Path, tmp_path: Path) -> None:
    registry = EmbeddedModelRegistry(tmp_path / "registry")
    registry.register(NAME, tiny_model, {}, {})
    with pytest.raises(PromotionError, match=r"version 1 has no recorded evaluation; evaluate it first \(`waldinger"):
        promote_verified(registry, NAME, None, run_id="run-a")
    assert registry.production(NAME) is None and registry.promotions(NAME) == []

    registry.record_evaluation(NAME, "1", GOOD, evaluated_on="tickets-v3")
    promotion = promote_verified(registry, NAME, None, run_id="run-a")
    assert (promotion.version, promotion.previous, promotion.metrics) == ("1", None, GOOD)
    assert promotion.gate.passed and promotion.override_reason is None
    (entry,) = registry.promotions(NAME)
    assert (entry["metrics"], entry["evaluated_on"], entry["override_reason"]) == (GOOD, "tickets-v3", None)


def test_within_the_margin_is_promoted_and_the_production_version_again_passes(
    two_versions: EmbeddedModelRegistry,
) -> None:
    registry = two_versions
    registry.record_evaluation(NAME, "2", {**WEAK, "exact_match": 0.945}, evaluated_on="tickets-v4")
    promotion = promote_verified(registry, NAME, "2", run_id="run-b")
    assert (promotion.version, promotion.previous, promotion.metrics["exact_match"]) == ("2", "1", 0.945)
    assert promotion.evaluated_on == "tickets-v4"

    again = promote_verified(registry, NAME, "2", run_id="run-c")  # compared with itself
    assert again.gate.passed and registry.production(NAME).version == "2"
    assert [(p["version"], p["metrics"]["exact_match"]) for p in registry.promotions(NAME)] == [
        ("1", 0.95),
        ("2", 0.945),
        ("2", 0.945),
    ]


def test_an_override_promotes_and_is_recorded_with_its_reason_and_the_gate_s_reasons(
    two_versions: EmbeddedModelRegistry,
) -> None:
    registry = two_versions
    promotion = promote_verified(
        registry, NAME, "2", run_id="run-b", override_gate=True, reason="  hotfix: v1 mislabels refunds (INC-42) "
    )
    assert registry.production(NAME).version == "2"
    assert promotion.override_reason == "hotfix: v1 mislabels refunds (INC-42)"
    assert promotion.reason == "promote (evaluation gate overridden)"
    assert not promotion.gate.passed
    entry = registry.promotions(NAME)[-1]
    assert entry["version"] == "2" and entry["previous"] == "1" and entry["run_id"] == "run-b"
    assert entry["override_reason"] == "hotfix: v1 mislabels refunds (INC-42)"
    assert entry["gate_failures"] == [
        "exact match 0.412 is below the threshold 0.900",
        "exact match 0.412 is worse than production version 1's 0.950 by more than the margin 0.010",
    ]
    assert entry["metrics"] == WEAK and entry["reason"] == "promote (evaluation gate overridden)"

    metadata = promotion.metadata()
    assert metadata["override_reason"].value == "hotfix: v1 mislabels refunds (INC-42)"
    assert metadata["gate_passed"].value is False
    assert metadata["gate"].value.startswith("failed: exact match 0.412 is below the threshold 0.900; ")
    assert metadata["metrics"].value == WEAK


@pytest.mark.parametrize(
    ("override_gate", "reason", "message"),
    [(True, None, "needs a reason"), (True, "   ", "needs a reason"), (False, "because", "only for an override")],
)
def test_an_override_needs_a_reason_and_a_reason_needs_an_override(
    two_versions: EmbeddedModelRegistry, override_gate: bool, reason: str | None, message: str
) -> None:
    registry = two_versions
    before = registry_files(registry)
    with pytest.raises(PromotionError, match=message):
        promote_verified(registry, NAME, "2", run_id="run-b", override_gate=override_gate, reason=reason)
    assert registry_files(registry) == before


def test_the_thresholds_come_from_the_environment_unless_given(
    two_versions: EmbeddedModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = two_versions
    registry.record_evaluation(NAME, "2", {"exact_match": 0.85}, evaluated_on="tickets-v4")
    monkeypatch.setenv("WALDINGER_PROMOTION_MIN_EXACT_MATCH", "0.8")
    with pytest.raises(
        PromotionError, match=re.escape("worse than production version 1's 0.950 by more than the margin 0.010")
    ):
        promote_verified(registry, NAME, "2", run_id="run-b")
    monkeypatch.setenv("WALDINGER_PROMOTION_MAX_REGRESSION", "0.1")
    promotion = promote_verified(registry, NAME, "2", run_id="run-b")
    assert (promotion.gate.min_exact_match, promotion.gate.max_regression) == (0.8, 0.1)

    with pytest.raises(PromotionError, match=re.escape("below the threshold 0.900")):
        promote_verified(registry, NAME, "2", run_id="run-c", min_exact_match=0.9)

    monkeypatch.setenv("WALDINGER_PROMOTION_MAX_REGRESSION", "5%")
    with pytest.raises(SettingsError, match="WALDINGER_PROMOTION_MAX_REGRESSION='5%' is not a fraction from 0 to 1"):
        promote_verified(registry, NAME, "2", run_id="run-d")


def test_the_production_model_asset_gates_and_records_an_override(two_versions: EmbeddedModelRegistry) -> None:
    registry = two_versions
    resources = {"model_registry": EmbeddedModelRegistryResource(model_name=NAME, root=str(registry.root))}

    refused = materialize(
        [production_model],
        resources=resources,
        raise_on_error=False,
        run_config={"ops": {"waldinger__model__production_model": {"config": {"version": "2"}}}},
    )
    assert not refused.success
    assert registry.production(NAME).version == "1"

    config = {"version": "2", "override_gate": True, "reason": "INC-42 hotfix", "min_exact_match": 0.4}
    result = materialize(
        [production_model],
        resources=resources,
        run_config={"ops": {"waldinger__model__production_model": {"config": config}}},
    )
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert (metadata["version"].value, metadata["previous_version"].value) == ("2", "1")
    assert metadata["metrics"].value == WEAK
    assert metadata["gate"].value == (
        "failed: exact match 0.412 is worse than production version 1's 0.950 by more than the margin 0.010"
    )
    assert metadata["min_exact_match"].value == 0.4
    assert metadata["override_reason"].value == "INC-42 hotfix"
    assert registry.production(NAME).stage == PRODUCTION and registry.production(NAME).version == "2"
    assert registry.promotions(NAME)[-1]["run_id"] == result.run_id


def test_azure_a_refused_promotion_downloads_and_changes_nothing(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block_real_network(monkeypatch)
    transport = FakeTransport()
    install_routes(transport)
    patch_blob_storage(transport, monkeypatch)
    registry = AzureMLModelRegistry.connect(
        subscription_id=SUB,
        resource_group=RG,
        workspace=WS,
        download_dir=tmp_path / "downloads",
        credential=FakeCredential(),
        transport=transport,
    )
    registry.register(NAME, tiny_model, {"source": "tiny"}, {})
    registry.record_evaluation(NAME, "1", WEAK, evaluated_on="tickets-v3")
    stored = copy.deepcopy(transport.models)

    transport.requests.clear()
    with pytest.raises(PromotionError, match=re.escape("exact match 0.412 is below the threshold 0.900")):
        promote_verified(registry, NAME, "1", run_id="run-a")
    assert not [r for r in transport.requests if r["host"].endswith("blob.core.windows.net")], "nothing downloaded"
    assert not [r for r in transport.requests if r["method"] != "GET"]
    assert transport.models == stored
    assert not (tmp_path / "downloads").exists()
