"""Azure ML Model Registry through azure-ai-ml, with the embedded registry's semantics: numbered immutable
versions (`MLClient.models.create_or_update(Model(name, version, path, type=custom_model, tags, properties))`),
idempotent by the artifact_sha256 tag, a Production stage, archive and restore, and rollback to the version
promoted before.

Archived versions count: `models.list()` skips them by default (ListViewType.ACTIVE_ONLY), so every listing here
asks for ALL versions, and for the ARCHIVED_ONLY ones to mark them, since azure-ai-ml's Model has no archived flag.
An archived version thus keeps its number, is what registering its bytes again returns, and is not promoted.

The promotion history lives in the versions' tags (`promoted_at`, `promoted_by_run`, `promotion_reason`, and for an
override of the evaluation gate `promotion_override_reason` and `promotion_gate_failures`); Dagster keeps the full
history as materializations of production_model.

A version's evaluation is stored as tags too: `eval_<metric>=<value>` (e.g. `eval_exact_match=0.953`) and
`evaluated_on=<dataset version>`; listing parses them back into `metrics` and `evaluated_on`, so `tags` hold the
same lineage tags as the embedded registry's. Tags are the mutable part of a model version: azure-ai-ml has no
`models.update`, and what `az ml model update --set tags.k=v` does is `models.get` then `models.create_or_update`
of the same name, version and path, a PUT that replaces the tags as a whole (so the other tags are sent along) and
that the service refuses only if the path changed. That PUT always sends `isArchived: false` (Model._to_rest_object),
which would restore an archived version, so an archived version's evaluation is not recorded (restore it first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from resources.model_registry.embedded import (
    RegistryError,
    ensure_evaluable,
    ensure_promotable,
    evaluation_or_error,
    rollback_target,
)
from resources.model_versions import (
    ARCHIVED,
    NONE_STAGE,
    PRODUCTION,
    SHA256_TAG,
    ModelVersion,
)
from waldinger_runtime.artifact import artifact_sha256, validate_artifact

AZURE_NON_PRODUCTION_STAGE = "Development"
METRIC_TAG_PREFIX = "eval_"
EVALUATED_ON_TAG = "evaluated_on"
OVERRIDE_REASON_TAG = "promotion_override_reason"
GATE_FAILURES_TAG = "promotion_gate_failures"
GATE_FAILURES_SEPARATOR = " | "


def _is_evaluation_tag(key: str) -> bool:
    return key == EVALUATED_ON_TAG or key.startswith(METRIC_TAG_PREFIX)


def split_evaluation_tags(tags: Mapping[str, str]) -> tuple[dict[str, str], dict[str, float], str | None]:
    """(the other tags, the metrics, evaluated_on) from a model version's tags. A tag that starts with eval_ but
    holds no number (set by hand in the studio, say) is not a metric and stays among the tags."""
    other, metrics = {}, {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                metrics[key[len(METRIC_TAG_PREFIX) :]] = float(value)
                continue
            except (TypeError, ValueError):
                pass
        if key != EVALUATED_ON_TAG:
            other[key] = str(value)
    return other, metrics, tags.get(EVALUATED_ON_TAG) or None


def _to_version(model, archived: bool) -> ModelVersion:
    created = getattr(getattr(model, "creation_context", None), "created_at", None)
    stage = ARCHIVED if archived else (model.stage or NONE_STAGE)
    tags, metrics, evaluated_on = split_evaluation_tags(dict(model.tags or {}))
    return ModelVersion(
        name=model.name,
        version=str(model.version),
        path=str(model.path),
        tags=tags,
        properties=dict(model.properties or {}),
        stage=PRODUCTION if stage == PRODUCTION else (ARCHIVED if stage == ARCHIVED else NONE_STAGE),
        created_at=created.isoformat(timespec="seconds") if isinstance(created, dt.datetime) else str(created or ""),
        metrics=metrics,
        evaluated_on=evaluated_on,
    )


class AzureMLModelRegistry:
    def __init__(self, ml_client, download_dir: Path) -> None:
        self.client = ml_client
        self.download_dir = Path(download_dir)

    @classmethod
    def connect(
        cls, subscription_id: str, resource_group: str, workspace: str, download_dir: Path, credential=None, **kwargs
    ) -> AzureMLModelRegistry:
        from azure.ai.ml import MLClient

        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        client = MLClient(
            credential=credential,
            subscription_id=subscription_id,
            resource_group_name=resource_group,
            workspace_name=workspace,
            enable_telemetry=False,
            show_progress=False,
            **kwargs,
        )
        return cls(client, download_dir)

    def _list(self, name: str, view: str) -> list:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return list(self.client.models.list(name=name, list_view_type=view))
        except ResourceNotFoundError:
            return []

    def _archived(self, name: str) -> dict[str, object]:
        from azure.ai.ml.constants import ListViewType

        return {str(m.version): m for m in self._list(name, ListViewType.ARCHIVED_ONLY)}

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version, archived ones included (stage Archived), oldest first."""
        from azure.ai.ml.constants import ListViewType

        models = {str(m.version): m for m in self._list(name, ListViewType.ALL)}
        # Asked after ALL, so a version archived in between is still listed (as archived), never missed.
        archived = self._archived(name)
        models.update(archived)
        return sorted(
            (_to_version(m, archived=number in archived) for number, m in models.items()), key=lambda v: int(v.version)
        )

    def get(self, name: str, version: str) -> ModelVersion:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            model = self.client.models.get(name=name, version=str(version))
        except ResourceNotFoundError:
            known = ", ".join(v.version for v in self.list_versions(name)) or "none"
            raise RegistryError(f"Model {name!r} has no version {version!r} (registered versions: {known}).") from None
        return _to_version(model, archived=str(model.version) in self._archived(name))

    def register(
        self, name: str, artifact_dir: Path, tags: dict[str, str], properties: dict[str, str]
    ) -> tuple[ModelVersion, bool]:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        validate_artifact(artifact_dir)
        sha256 = artifact_sha256(artifact_dir)
        versions = self.list_versions(name)  # archived ones included: they keep their bytes and their number
        for existing in versions:
            if existing.sha256 == sha256:
                return existing, False
        # The number comes from the same listing that decided there is no such version yet. Were two registrations
        # of different bytes to race for it, the service refuses the second PUT (a version's path cannot change).
        number = str(max((int(v.version) for v in versions), default=0) + 1)
        # The artifact is uploaded first and the version PUT comes last: a failure leaves no version.
        model = self.client.models.create_or_update(
            Model(
                name=name,
                version=number,
                path=str(artifact_dir),
                type=AssetTypes.CUSTOM_MODEL,
                tags={**{k: str(v) for k, v in tags.items()}, SHA256_TAG: sha256},
                properties={k: str(v) for k, v in properties.items()},
                description=f"Registered by the Waldinger pipeline from {tags.get('source', 'unknown source')}",
            )
        )
        return _to_version(model, archived=False), True

    def local_path(self, version: ModelVersion) -> Path:
        """Downloads the version (once) and returns the folder that holds its config.json."""
        target = self.download_dir / version.name / version.version
        if not (target.exists() and any(target.rglob("config.json"))):
            target.mkdir(parents=True, exist_ok=True)
            self.client.models.download(name=version.name, version=version.version, download_path=str(target))
        found = sorted(target.rglob("config.json"))
        if not found:
            raise RegistryError(f"{version.name} version {version.version} downloaded to {target} has no config.json.")
        return found[0].parent

    def production(self, name: str) -> ModelVersion | None:
        return next((v for v in self.list_versions(name) if v.stage == PRODUCTION), None)

    def _update(
        self,
        name: str,
        version: str,
        stage: str | None = None,
        set_tags: Mapping[str, str] | None = None,
        drop_tag=lambda key: False,
    ) -> None:
        """Changes a version's mutable fields the way azure-ai-ml supports (get, change, create_or_update of the same
        name, version and path): the PUT replaces the tags as a whole, so every tag not dropped is sent back."""
        model = self.client.models.get(name=name, version=version)
        if stage is not None:
            model.stage = stage
        kept = {k: v for k, v in (model.tags or {}).items() if not drop_tag(k)}
        model.tags = {**kept, **(set_tags or {})}
        self.client.models.create_or_update(model)

    def record_evaluation(
        self, name: str, version: str, metrics: Mapping[str, float], evaluated_on: str
    ) -> ModelVersion:
        """Stores the metrics as `eval_<name>` tags and the dataset version as `evaluated_on`, replacing an earlier
        evaluation's tags (a metric the new evaluation lacks does not linger)."""
        checked, dataset = evaluation_or_error(metrics, evaluated_on)
        ensure_evaluable(self.get(name, version))
        tags = {f"{METRIC_TAG_PREFIX}{key}": repr(value) for key, value in checked.items()}
        self._update(name, str(version), set_tags={**tags, EVALUATED_ON_TAG: dataset}, drop_tag=_is_evaluation_tag)
        return self.get(name, version)

    def promote(
        self,
        name: str,
        version: str,
        run_id: str | None = None,
        reason: str = "promote",
        gate_failures: Sequence[str] = (),
        override_reason: str | None = None,
    ) -> ModelVersion:
        target = self.get(name, version)
        ensure_promotable(target)
        previous = self.production(name)
        if previous and previous.version != target.version:
            self._update(name, previous.version, stage=AZURE_NON_PRODUCTION_STAGE)
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        promotion_tags = {"promoted_at": stamp, "promoted_by_run": run_id or "cli", "promotion_reason": reason}
        if override_reason:
            promotion_tags[OVERRIDE_REASON_TAG] = override_reason
            promotion_tags[GATE_FAILURES_TAG] = GATE_FAILURES_SEPARATOR.join(gate_failures)
        self._update(  # an earlier override of this version is not this promotion's
            name,
            target.version,
            stage=PRODUCTION,
            set_tags=promotion_tags,
            drop_tag=lambda key: key in (OVERRIDE_REASON_TAG, GATE_FAILURES_TAG),
        )
        return self.get(name, target.version)

    def promotions(self, name: str) -> list[dict]:
        """The latest promotion of each version, oldest first (from the versions' tags)."""
        promoted = [v for v in self.list_versions(name) if v.tags.get("promoted_at")]
        return [
            {
                "at": v.tags["promoted_at"],
                "version": v.version,
                "run_id": v.tags.get("promoted_by_run"),
                "reason": v.tags.get("promotion_reason"),
                "artifact_sha256": v.sha256,
                "metrics": v.metrics,  # the version's metrics now (its tags keep no copy per promotion)
                "evaluated_on": v.evaluated_on,
                "gate_failures": [f for f in v.tags.get(GATE_FAILURES_TAG, "").split(GATE_FAILURES_SEPARATOR) if f],
                "override_reason": v.tags.get(OVERRIDE_REASON_TAG),
            }
            for v in sorted(promoted, key=lambda v: v.tags["promoted_at"])
        ]

    def rollback(self, name: str, run_id: str | None = None) -> ModelVersion:
        current, target = rollback_target(name, self.production(name), self.promotions(name))
        return self.promote(name, target, run_id=run_id, reason=f"rollback from {current.version}")

    def archive(self, name: str, version: str) -> ModelVersion:
        target = self.get(name, version)
        if target.stage == PRODUCTION:
            raise RegistryError(f"{name} version {version} is in production; promote another version first.")
        self.client.models.archive(name=name, version=version)
        return self.get(name, version)

    def restore(self, name: str, version: str) -> ModelVersion:
        """Makes an archived version promotable again; any other version is left untouched (the SDK's restore is a
        PUT that leaves the stage out)."""
        target = self.get(name, version)
        if target.stage != ARCHIVED:
            return target
        self.client.models.restore(name=name, version=version)
        return self.get(name, version)
