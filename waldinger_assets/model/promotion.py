"""Promotion and rollback: explicit steps that verify a version (hash; for promotion also load + greedy
answer) before it becomes the production version, and record which version, when and by which run."""

from __future__ import annotations

from dataclasses import dataclass

from resources.model_registry.embedded import ensure_promotable, rollback_target
from waldinger_assets.model.inference_check import load_and_answer
from waldinger_runtime.artifact import verify_sha256


class PromotionError(RuntimeError):
    """The version cannot be promoted; nothing changed in the registry."""


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous: str | None
    sha256: str
    reply: str | None
    reason: str

    def metadata(self) -> dict:
        from dagster import MetadataValue

        return {
            "version": MetadataValue.text(self.version),
            "previous_version": MetadataValue.text(self.previous or "none"),
            "artifact_sha256": MetadataValue.text(self.sha256),
            "reason": MetadataValue.text(self.reason),
            "check_reply": MetadataValue.text(repr(self.reply) if self.reply is not None else "not run"),
        }


def promote_verified(registry, name: str, version: str | None, run_id: str | None) -> Promotion:
    versions = registry.list_versions(name)
    if not versions:
        raise PromotionError(f"No version of {name} is registered; materialize registered_model first.")
    target = registry.get(name, version) if version else versions[-1]
    ensure_promotable(target)
    path = registry.local_path(target)
    verify_sha256(path, target.sha256)
    first, second = load_and_answer(path), load_and_answer(path)
    if not first.token_ids or first.token_ids != second.token_ids:
        raise PromotionError(f"{name} version {target.version} does not answer deterministically; not promoted.")
    previous = registry.production(name)
    registry.promote(name, target.version, run_id=run_id, reason="promote")
    return Promotion(name, target.version, previous.version if previous else None, target.sha256, first.text, "promote")


def rollback_verified(registry, name: str, run_id: str | None) -> Promotion:
    current, target_version = rollback_target(name, registry.production(name), registry.promotions(name))
    target = registry.get(name, target_version)
    ensure_promotable(target)
    verify_sha256(registry.local_path(target), target.sha256)
    promoted = registry.rollback(name, run_id=run_id)
    return Promotion(name, promoted.version, current.version, promoted.sha256, None, f"rollback from {current.version}")
