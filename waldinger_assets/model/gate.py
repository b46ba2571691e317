"""The evaluation gate: the one rule that decides whether a model version may become the production version.

A version passes when its exact match on the eval split is at least the threshold and is not worse than the
production version's by more than the margin. A version with no recorded evaluation fails (evaluate it first); so
does a candidate when the production version has no exact match to compare with. Comparing the production version
with itself passes the regression part, so promoting it again with the same metrics is not refused.

Pure: plain data in, a decision out; the callers (promotion, the CLI, the production_model asset) ask it.
"""

from __future__ import annotations

from dataclasses import dataclass

from resources.model_versions import ModelVersion

EXACT_MATCH = "exact_match"
DEFAULT_MIN_EXACT_MATCH = 0.9
DEFAULT_MAX_REGRESSION = 0.01
# Metrics are averages over a finite split; differences below this are float noise (0.95 - 0.94 > 0.01 in binary).
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: tuple[str, ...]  # why it failed, each naming both figures; empty when it passed
    candidate: str  # the version judged
    production: str | None  # the production version it was compared with
    min_exact_match: float
    max_regression: float

    def summary(self) -> str:
        if not self.passed:
            return "failed: " + "; ".join(self.reasons)
        passed = f"passed: exact match at least {self.min_exact_match:.3f}"
        if self.production is None:
            return passed + " (no production version to compare with)"
        return passed + f" and within {self.max_regression:.3f} of production version {self.production}'s"

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "candidate": self.candidate,
            "production": self.production,
            "min_exact_match": self.min_exact_match,
            "max_regression": self.max_regression,
        }


def evaluation_gate(
    candidate: ModelVersion,
    production: ModelVersion | None,
    min_exact_match: float = DEFAULT_MIN_EXACT_MATCH,
    max_regression: float = DEFAULT_MAX_REGRESSION,
) -> GateDecision:
    if not 0 <= min_exact_match <= 1:
        raise ValueError(f"min_exact_match {min_exact_match!r} is not a fraction from 0 to 1.")
    if not 0 <= max_regression <= 1:
        raise ValueError(f"max_regression {max_regression!r} is not a fraction from 0 to 1.")

    def decision(*reasons: str) -> GateDecision:
        return GateDecision(
            passed=not reasons,
            reasons=reasons,
            candidate=candidate.version,
            production=production.version if production else None,
            min_exact_match=min_exact_match,
            max_regression=max_regression,
        )

    score = candidate.metrics.get(EXACT_MATCH)
    if score is None:
        return decision(_not_evaluated(candidate, "version"))
    reasons = []
    if score < min_exact_match - _TOLERANCE:
        shown, threshold = _figures(score, min_exact_match)
        reasons.append(f"exact match {shown} is below the threshold {threshold}")
    if production is not None:
        baseline = production.metrics.get(EXACT_MATCH)
        if baseline is None:
            reasons.append(_not_evaluated(production, "production version") + ", so there is nothing to compare with")
        elif baseline - score > max_regression + _TOLERANCE:
            shown, theirs = _figures(score, baseline)
            reasons.append(
                f"exact match {shown} is worse than production version {production.version}'s {theirs} by more "
                f"than the margin {max_regression:.3f}"
            )
    return decision(*reasons)


def _not_evaluated(version: ModelVersion, role: str) -> str:
    command = f"`waldinger model evaluate --version {version.version}`"
    if not version.metrics:
        return f"{role} {version.version} has no recorded evaluation; evaluate it first ({command})"
    return (
        f"{role} {version.version}'s evaluation has no {EXACT_MATCH} (it has {', '.join(sorted(version.metrics))}); "
        f"evaluate it again ({command})"
    )


def _figures(a: float, b: float) -> tuple[str, str]:
    """Both numbers with 3 decimals, or as many more as it takes to show they differ (0.8996 is not 0.900)."""
    for decimals in range(3, 10):
        shown = f"{a:.{decimals}f}", f"{b:.{decimals}f}"
        if shown[0] != shown[1]:
            return shown
    return f"{a:.3f}", f"{b:.3f}"
