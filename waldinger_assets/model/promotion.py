"""Promotion and rollback: explicit steps that verify a version (hash; for promotion also load + greedy
answer, and the evaluation gate) before it becomes the production version, and record which version, when, by
which run, with which metrics, and for an override of the gate its reason and the gate's failed reasons.

The gate is asked before anything is downloaded (a refused Mistral-7B need not be fetched) and again right before
the registry changes, against the production version and metrics of that moment. Rollback is not gated: it returns
to the version that was in production before, whatever its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from resources import environment
from resources.model_registry.embedded import ensure_promotable, rollback_target
from resources.model_versions import ModelVersion
from waldinger_assets.model.gate import GateDecision, evaluation_gate
from waldinger_assets.model.inference_check import load_and_answer
from waldinger_runtime.artifact import verify_sha256


class PromotionError(RuntimeError):
    """The version cannot be promoted; nothing changed in the registry. `decision` is the gate's, when it refused."""

    def __init__(self, message: str, decision: GateDecision | None = None) -> None:
        super().__init__(message)
        self.decision = decision


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous: str | None
    sha256: str
    reply: str | None
    reason: str
    metrics: dict[str, float]
    evaluated_on: str | None = None
    gate: GateDecision | None = None  # None for a rollback, which is not gated
    override_reason: str | None = None  # set when the gate refused and was overridden

    def metadata(self) -> dict:
        from dagster import MetadataValue

        metadata = {
            "version": MetadataValue.text(self.version),
            "previous_version": MetadataValue.text(self.previous or "none"),
            "artifact_sha256": MetadataValue.text(self.sha256),
            "reason": MetadataValue.text(self.reason),
            "check_reply": MetadataValue.text(repr(self.reply) if self.reply is not None else "not run"),
            "metrics": MetadataValue.json(self.metrics),
            "evaluated_on": MetadataValue.text(self.evaluated_on or "not evaluated"),
            "gate": MetadataValue.text(self.gate.summary() if self.gate else "not gated (rollback)"),
        }
        if self.gate:
            metadata["gate_passed"] = MetadataValue.bool(self.gate.passed)
            metadata["min_exact_match"] = MetadataValue.float(self.gate.min_exact_match)
            metadata["max_regression"] = MetadataValue.float(self.gate.max_regression)
        if self.override_reason:
            metadata["override_reason"] = MetadataValue.text(self.override_reason)
        return metadata

    def to_json(self) -> dict:
        return {
            "model": self.name,
            "version": self.version,
            "previous_version": self.previous,
            "reason": self.reason,
            "metrics": self.metrics,
            "evaluated_on": self.evaluated_on,
            "gate": self.gate.to_json() if self.gate else None,
            "override_reason": self.override_reason,
        }


def promote_verified(
    registry,
    name: str,
    version: str | None,
    run_id: str | None,
    min_exact_match: float | None = None,
    max_regression: float | None = None,
    override_gate: bool = False,
    reason: str | None = None,
) -> Promotion:
    """Promotes `version` (default: the latest registered) once it verifies and the evaluation gate passes it, or,
    with `override_gate` and a `reason`, despite the gate. Thresholds left None come from the environment
    (resources.environment.promotion_gate_settings)."""
    override_reason = _override_reason(override_gate, reason)
    defaults = environment.promotion_gate_settings()
    thresholds = (
        defaults.min_exact_match if min_exact_match is None else min_exact_match,
        defaults.max_regression if max_regression is None else max_regression,
    )
    versions = registry.list_versions(name)
    if not versions:
        raise PromotionError(f"No version of {name} is registered; materialize registered_model first.")
    target = registry.get(name, version) if version else versions[-1]
    ensure_promotable(target)
    _gate(target, registry.production(name), thresholds, override_reason)  # before anything is downloaded
    path = registry.local_path(target)
    verify_sha256(path, target.sha256)
    first, second = load_and_answer(path), load_and_answer(path)
    if not first.token_ids or first.token_ids != second.token_ids:
        raise PromotionError(f"{name} version {target.version} does not answer deterministically; not promoted.")
    target = registry.get(name, target.version)  # metrics recorded while it was verified count
    previous = registry.production(name)
    decision = _gate(target, previous, thresholds, override_reason)
    overridden = override_reason if not decision.passed else None
    registry.promote(
        name,
        target.version,
        run_id=run_id,
        reason="promote (evaluation gate overridden)" if overridden else "promote",
        gate_failures=decision.reasons,
        override_reason=overridden,
    )
    return Promotion(
        name,
        target.version,
        previous.version if previous else None,
        target.sha256,
        first.text,
        "promote (evaluation gate overridden)" if overridden else "promote",
        metrics=dict(target.metrics),
        evaluated_on=target.evaluated_on,
        gate=decision,
        override_reason=overridden,
    )


def rollback_verified(registry, name: str, run_id: str | None) -> Promotion:
    current, target_version = rollback_target(name, registry.production(name), registry.promotions(name))
    target = registry.get(name, target_version)
    ensure_promotable(target)
    verify_sha256(registry.local_path(target), target.sha256)
    promoted = registry.rollback(name, run_id=run_id)
    return Promotion(
        name,
        promoted.version,
        current.version,
        promoted.sha256,
        None,
        f"rollback from {current.version}",
        metrics=dict(promoted.metrics),
        evaluated_on=promoted.evaluated_on,
    )


def _override_reason(override_gate: bool, reason: str | None) -> str | None:
    text = (reason or "").strip()
    if override_gate and not text:
        raise PromotionError(
            "Overriding the evaluation gate needs a reason, which is recorded with the promotion: give one "
            "(`--reason TEXT`, or `reason` in the production_model config)."
        )
    if text and not override_gate:
        raise PromotionError(
            "A reason is recorded only for an override of the evaluation gate; add --override-gate (config "
            "override_gate: true) to override it, or leave the reason out."
        )
    return text or None


def _gate(
    target: ModelVersion,
    production: ModelVersion | None,
    thresholds: tuple[float, float],
    override_reason: str | None,
) -> GateDecision:
    try:
        decision = evaluation_gate(target, production, *thresholds)
    except ValueError as error:
        raise PromotionError(f"{target.name} version {target.version} was not promoted: {error}") from None
    if not decision.passed and override_reason is None:
        reasons = "".join(f"\n  - {r}" for r in decision.reasons)
        raise PromotionError(
            f"{target.name} version {target.version} was not promoted: the evaluation gate refused it:{reasons}\n"
            "Nothing changed in the registry. Evaluate or improve the version, or promote it anyway with "
            f"`waldinger model promote --version {target.version} --override-gate --reason TEXT` (the override and "
            "its reason are recorded).",
            decision,
        )
    return decision
