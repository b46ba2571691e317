"""The Azure ML registry path, at its HTTP boundary: azure-ai-ml runs for real against a fake of Azure's
endpoints (tests/fakes/azure_ml.py), and the tests assert the REST requests it makes. The archive tests run on
both registries (`any_registry`): archived versions must behave the same locally and in Azure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from resources.model_registry.azure import AzureMLModelRegistry
from resources.model_registry.embedded import (
    ARCHIVED,
    NONE_STAGE,
    PRODUCTION,
    SHA256_TAG,
    EmbeddedModelRegistry,
    RegistryError,
)
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
from waldinger_assets.model.promotion import promote_verified, rollback_verified

NAME = "mistral-7b-instruct"
TAGS = {"source": "hf:mistralai/Mistral-7B-Instruct-v0.3", "code_version": "abc123", "dagster_run_id": "run-1"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
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
    return registry, transport


@pytest.fixture(params=["embedded", "azure"])
def any_registry(request: pytest.FixtureRequest, tmp_path: Path):
    """Each registry in turn: the archive semantics must be the same locally and in Azure."""
    if request.param == "embedded":
        return EmbeddedModelRegistry(tmp_path / "registry")
    return request.getfixturevalue("azure")[0]


def version_puts(transport: FakeTransport) -> list[dict]:
    return [r for r in transport.requests if r["method"] == "PUT" and "/models/" in r["path"]]


def variant(tiny_model: Path, folder: Path, rms_norm_eps: float) -> Path:
    """A copy of the tiny model with other bytes (one config value changed)."""
    changed = Path(shutil.copytree(tiny_model, folder))
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "rms_norm_eps": rms_norm_eps}))
    return changed


def register_two_and_archive_the_second(registry, tiny_model: Path, tmp_path: Path) -> Path:
    """Versions 1 and 2, version 2 archived; returns version 2's artifact."""
    registry.register(NAME, tiny_model, TAGS, {})
    second = variant(tiny_model, tmp_path / "v2", 1e-6)
    assert registry.register(NAME, second, TAGS, {})[0].version == "2"
    registry.archive(NAME, "2")
    return second


def test_registration_uploads_the_artifact_and_puts_a_version_with_tags_and_properties(azure, tiny_model) -> None:
    registry, transport = azure
    version, created = registry.register(NAME, tiny_model, TAGS, {"format": "transformers"})
    assert created and version.version == "1"

    (put,) = version_puts(transport)
    assert put["path"].endswith(f"/workspaces/{WS}/models/{NAME}/versions/1")
    body = put["json"]["properties"]
    assert body["modelType"] == "custom_model"
    assert body["tags"] == {**TAGS, SHA256_TAG: version.sha256}
    assert body["properties"] == {"format": "transformers"}
    assert body["modelUri"].startswith(f"azureml://subscriptions/{SUB}/resourcegroups/{RG}/workspaces/{WS}/datastores/")
    uploaded = {
        r["path"].rsplit("/", 1)[-1]
        for r in transport.requests
        if r["host"].endswith("blob.core.windows.net") and r["method"] == "PUT"
    }
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= uploaded
    assert all(
        r["headers"].get("Authorization", "").startswith("Bearer ")
        for r in transport.requests
        if r["host"] == "management.azure.com"
    )


def test_registering_the_same_bytes_again_creates_no_version(azure, tiny_model) -> None:
    registry, transport = azure
    first, _ = registry.register(NAME, tiny_model, TAGS, {})
    again, created = registry.register(NAME, tiny_model, {**TAGS, "dagster_run_id": "run-2"}, {})
    assert not created and again.version == first.version
    assert len(version_puts(transport)) == 1
    assert [v.version for v in registry.list_versions(NAME)] == ["1"]


def test_a_failed_version_put_leaves_no_version(azure, tiny_model) -> None:
    from azure.core.exceptions import HttpResponseError

    registry, transport = azure
    transport.fail_model_put = True
    with pytest.raises(HttpResponseError):
        registry.register(NAME, tiny_model, TAGS, {})
    assert registry.list_versions(NAME) == []


def test_promotion_sets_the_stage_and_rollback_returns_to_the_previous_version(azure, tiny_model, tmp_path) -> None:
    import json
    import shutil

    registry, transport = azure
    registry.register(NAME, tiny_model, TAGS, {})
    changed = Path(shutil.copytree(tiny_model, tmp_path / "v2"))
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-6}))
    registry.register(NAME, changed, TAGS, {})

    registry.promote(NAME, "1", run_id="run-a")
    registry.promote(NAME, "2", run_id="run-b")
    stages = {r["path"].rsplit("/", 1)[-1]: r["json"]["properties"].get("stage") for r in version_puts(transport)[-2:]}
    assert stages == {"1": "Development", "2": PRODUCTION}
    assert registry.production(NAME).version == "2"
    assert registry.production(NAME).tags["promoted_by_run"] == "run-b"

    assert registry.rollback(NAME, run_id="run-c").version == "1"
    assert registry.production(NAME).version == "1"
    with pytest.raises(RegistryError, match="no version '7'"):
        registry.get(NAME, "7")


def test_new_bytes_after_an_archived_version_get_the_next_number_not_the_archived_one(
    any_registry, tiny_model, tmp_path
) -> None:
    registry = any_registry
    register_two_and_archive_the_second(registry, tiny_model, tmp_path)

    third, created = registry.register(NAME, variant(tiny_model, tmp_path / "v3", 1e-4), TAGS, {})
    assert created and third.version == "3"
    assert [(v.version, v.stage) for v in registry.list_versions(NAME)] == [
        ("1", NONE_STAGE),
        ("2", ARCHIVED),
        ("3", NONE_STAGE),
    ]


def test_registering_the_bytes_of_an_archived_version_again_returns_it_still_archived(
    any_registry, tiny_model, tmp_path
) -> None:
    registry = any_registry
    second = register_two_and_archive_the_second(registry, tiny_model, tmp_path)

    again, created = registry.register(NAME, second, {**TAGS, "dagster_run_id": "run-2"}, {})
    assert not created and (again.version, again.stage) == ("2", ARCHIVED)
    assert registry.get(NAME, "2").tags["dagster_run_id"] == "run-1"
    assert [(v.version, v.stage) for v in registry.list_versions(NAME)] == [("1", NONE_STAGE), ("2", ARCHIVED)]


def test_an_archived_version_is_not_promoted_until_it_is_restored(any_registry, tiny_model, tmp_path) -> None:
    registry = any_registry
    register_two_and_archive_the_second(registry, tiny_model, tmp_path)
    registry.promote(NAME, "1", run_id="run-a")

    with pytest.raises(RegistryError, match=f"{NAME} version 2 is archived, so it cannot be promoted; .*restore"):
        promote_verified(registry, NAME, "2", run_id="run-b")
    with pytest.raises(RegistryError, match=f"{NAME} version 2 is archived"):
        promote_verified(registry, NAME, None, run_id="run-b")  # the latest version, which is archived
    with pytest.raises(RegistryError, match="version 2 is archived"):
        registry.promote(NAME, "2")
    assert registry.production(NAME).version == "1"
    assert [p["version"] for p in registry.promotions(NAME)] == ["1"]

    assert registry.restore(NAME, "2").stage == NONE_STAGE
    assert registry.promote(NAME, "2", run_id="run-c").stage == PRODUCTION
    assert [(v.version, v.stage) for v in registry.list_versions(NAME)] == [("1", NONE_STAGE), ("2", PRODUCTION)]


def test_rolling_back_to_an_archived_version_is_refused(any_registry, tiny_model, tmp_path) -> None:
    registry = any_registry
    registry.register(NAME, tiny_model, TAGS, {})
    registry.register(NAME, variant(tiny_model, tmp_path / "v2", 1e-6), TAGS, {})
    registry.promote(NAME, "1", run_id="run-a")
    registry.promote(NAME, "2", run_id="run-b")
    registry.archive(NAME, "1")

    with pytest.raises(RegistryError, match=f"{NAME} version 1 is archived, so it cannot be promoted"):
        rollback_verified(registry, NAME, run_id="run-c")
    assert registry.production(NAME).version == "2"


def test_archive_is_a_put_of_is_archived_and_listing_asks_for_archived_versions_too(
    azure, tiny_model, tmp_path
) -> None:
    registry, transport = azure
    registry.register(NAME, tiny_model, TAGS, {})
    registry.register(NAME, variant(tiny_model, tmp_path / "v2", 1e-6), TAGS, {})
    registry.promote(NAME, "1", run_id="run-a")
    with pytest.raises(RegistryError, match="in production"):
        registry.archive(NAME, "1")

    puts_before = len(version_puts(transport))
    assert registry.archive(NAME, "2").stage == ARCHIVED
    (archive_put,) = version_puts(transport)[puts_before:]
    assert archive_put["path"].endswith(f"/models/{NAME}/versions/2")
    assert archive_put["json"]["properties"]["isArchived"] is True
    assert [(v.version, v.stage) for v in registry.list_versions(NAME)] == [("1", PRODUCTION), ("2", ARCHIVED)]

    listed = [r for r in transport.requests if r["method"] == "GET" and r["path"].endswith(f"/{NAME}/versions")]
    views = {r["query"].get("listViewType") for r in listed}  # (the SDK's own latest-version lookup sends none)
    assert {"All", "ArchivedOnly"} <= views and "ActiveOnly" not in views

    # Promoting it is refused before anything is downloaded or changed.
    transport.requests.clear()
    with pytest.raises(RegistryError, match="version 2 is archived"):
        promote_verified(registry, NAME, "2", run_id="run-b")
    assert not [r for r in transport.requests if r["host"].endswith("blob.core.windows.net")]
    assert version_puts(transport) == []

    # The bytes of the archived version again: no PUT, so the version stays archived with its own tags.
    transport.requests.clear()
    again, created = registry.register(NAME, variant(tiny_model, tmp_path / "again", 1e-6), TAGS, {})
    assert not created and again.version == "2" and version_puts(transport) == []


METRICS = {"exact_match": 0.953, "parse_rate": 1.0, "latency_p50_ms": 41.5}


def test_an_evaluation_is_stored_with_the_version_and_read_back(any_registry, tiny_model) -> None:
    registry = any_registry
    registry.register(NAME, tiny_model, TAGS, {})
    assert (registry.get(NAME, "1").metrics, registry.get(NAME, "1").evaluated_on) == ({}, None)

    recorded = registry.record_evaluation(NAME, "1", METRICS, evaluated_on="tickets-v3")
    assert (recorded.metrics, recorded.evaluated_on) == (METRICS, "tickets-v3")
    (listed,) = registry.list_versions(NAME)
    assert (listed.metrics, listed.evaluated_on) == (METRICS, "tickets-v3")
    assert listed.tags == {**TAGS, SHA256_TAG: listed.sha256}, "the lineage tags are kept, the metrics are not tags"
    assert listed.to_json()["metrics"] == METRICS

    # Registering the same bytes again keeps the evaluation; promotion keeps it and records it.
    again, created = registry.register(NAME, tiny_model, {**TAGS, "dagster_run_id": "run-2"}, {})
    assert not created and again.metrics == METRICS
    assert registry.promote(NAME, "1", run_id="run-a").metrics == METRICS
    (promotion,) = registry.promotions(NAME)
    assert (promotion["metrics"], promotion["evaluated_on"]) == (METRICS, "tickets-v3")
    assert (promotion["gate_failures"], promotion["override_reason"]) == ([], None)


def test_a_re_evaluation_replaces_the_metrics(any_registry, tiny_model) -> None:
    registry = any_registry
    registry.register(NAME, tiny_model, TAGS, {})
    registry.record_evaluation(NAME, "1", METRICS, evaluated_on="tickets-v3")
    registry.record_evaluation(NAME, "1", {"exact_match": 0.961, "parse_rate": 0.99}, evaluated_on="tickets-v4")
    version = registry.get(NAME, "1")
    assert version.metrics == {"exact_match": 0.961, "parse_rate": 0.99}, "latency_p50_ms of v3 does not linger"
    assert version.evaluated_on == "tickets-v4"
    assert version.tags == {**TAGS, SHA256_TAG: version.sha256}


@pytest.mark.parametrize(
    ("metrics", "evaluated_on", "message"),
    [
        ({}, "tickets-v3", "at least one metric"),
        ({"exact_match": float("nan")}, "tickets-v3", "a metric is a finite number"),
        ({"exact_match": "0.9"}, "tickets-v3", "a metric is a finite number"),
        ({"Exact Match": 0.9}, "tickets-v3", "is not usable"),
        ({"exact_match": 0.9}, " ", "evaluated_on must name the dataset version"),
    ],
)
def test_an_unusable_evaluation_is_refused_and_nothing_is_stored(
    any_registry, tiny_model, metrics, evaluated_on, message
) -> None:
    registry = any_registry
    registry.register(NAME, tiny_model, TAGS, {})
    with pytest.raises(RegistryError, match=message):
        registry.record_evaluation(NAME, "1", metrics, evaluated_on=evaluated_on)
    assert registry.get(NAME, "1").metrics == {}


def test_an_archived_version_s_evaluation_is_not_recorded(any_registry, tiny_model, tmp_path) -> None:
    registry = any_registry
    register_two_and_archive_the_second(registry, tiny_model, tmp_path)
    with pytest.raises(RegistryError, match="version 2 is archived, so its evaluation is not recorded; restore it"):
        registry.record_evaluation(NAME, "2", METRICS, evaluated_on="tickets-v3")
    assert (registry.get(NAME, "2").stage, registry.get(NAME, "2").metrics) == (ARCHIVED, {})
    with pytest.raises(RegistryError, match="no version '9'"):
        registry.record_evaluation(NAME, "9", METRICS, evaluated_on="tickets-v3")


def test_azure_stores_the_evaluation_as_tags_in_one_put_of_the_same_version(azure, tiny_model) -> None:
    registry, transport = azure
    registry.register(NAME, tiny_model, TAGS, {})
    registry.promote(NAME, "1", run_id="run-a")
    (registered_put, promoted_put) = version_puts(transport)
    puts_before = len(version_puts(transport))

    registry.record_evaluation(NAME, "1", METRICS, evaluated_on="tickets-v3")
    (put,) = version_puts(transport)[puts_before:]
    assert put["path"].endswith(f"/models/{NAME}/versions/1")
    body = put["json"]["properties"]
    assert body["tags"] == {
        **promoted_put["json"]["properties"]["tags"],  # lineage and promotion tags are sent back, not lost
        "eval_exact_match": "0.953",
        "eval_parse_rate": "1.0",
        "eval_latency_p50_ms": "41.5",
        "evaluated_on": "tickets-v3",
    }
    assert body["modelUri"] == registered_put["json"]["properties"]["modelUri"], "the same files, no new upload"
    assert body["stage"] == PRODUCTION and body["isArchived"] is False
    assert registry.production(NAME).metrics == METRICS


def test_azure_reads_eval_tags_set_elsewhere_and_keeps_tags_that_are_not_numbers(azure, tiny_model) -> None:
    registry, transport = azure
    registry.register(NAME, tiny_model, TAGS, {})
    stored = transport.models[(NAME, "1")]["properties"]["tags"]
    stored.update({"eval_exact_match": "0.91", "eval_notes": "looked fine", "evaluated_on": "tickets-v2"})
    version = registry.get(NAME, "1")
    assert (version.metrics, version.evaluated_on) == ({"exact_match": 0.91}, "tickets-v2")
    assert version.tags["eval_notes"] == "looked fine"


def test_an_override_is_recorded_in_azure_tags_and_a_later_plain_promotion_clears_it(
    azure, tiny_model, tmp_path
) -> None:
    registry, _ = azure
    registry.register(NAME, tiny_model, TAGS, {})
    registry.register(NAME, variant(tiny_model, tmp_path / "v2", 1e-6), TAGS, {})
    failures = ("exact match 0.412 is below the threshold 0.900", "another reason")
    registry.promote(NAME, "1", run_id="run-a", gate_failures=failures, override_reason="hotfix for ticket 42")
    assert registry.promotions(NAME)[-1]["override_reason"] == "hotfix for ticket 42"
    assert registry.promotions(NAME)[-1]["gate_failures"] == list(failures)

    registry.promote(NAME, "2", run_id="run-b")
    registry.promote(NAME, "1", run_id="run-c")
    # (the history is one entry per version, ordered by promoted_at seconds: pick version 1's, not the last one)
    (latest,) = [p for p in registry.promotions(NAME) if p["version"] == "1"]
    assert (latest["run_id"], latest["override_reason"], latest["gate_failures"]) == ("run-c", None, [])
