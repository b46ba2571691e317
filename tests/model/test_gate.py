"""The evaluation gate on plain data: threshold, regression margin, missing metrics, no production version."""

from __future__ import annotations

import pytest

from resources.model_versions import PRODUCTION, ModelVersion
from waldinger_assets.model.gate import evaluation_gate

NAME = "waldinger-tiny-mistral"


def version(number: str, exact_match: float | None, **other_metrics: float) -> ModelVersion:
    metrics = {**({"exact_match": exact_match} if exact_match is not None else {}), **other_metrics}
    return ModelVersion(
        name=NAME,
        version=number,
        path=f"/registry/{number}",
        tags={"artifact_sha256": "ab" * 32},
        metrics=metrics,
        evaluated_on="tickets-v3" if metrics else None,
    )


def test_below_the_threshold_fails_naming_both_figures() -> None:
    decision = evaluation_gate(version("4", 0.412), None)
    assert not decision.passed
    assert decision.reasons == ("exact match 0.412 is below the threshold 0.900",)
    assert decision.summary() == "failed: exact match 0.412 is below the threshold 0.900"


def test_at_the_threshold_passes_and_a_custom_threshold_is_used() -> None:
    assert evaluation_gate(version("4", 0.9), None).passed
    decision = evaluation_gate(version("4", 0.85), None, min_exact_match=0.8)
    assert decision.passed and decision.reasons == ()
    assert decision.summary() == "passed: exact match at least 0.800 (no production version to compare with)"
    assert not evaluation_gate(version("4", 0.85), None, min_exact_match=0.86).passed


def test_a_difference_beyond_three_decimals_is_shown_with_the_decimals_it_needs() -> None:
    (reason,) = evaluation_gate(version("4", 0.8996), None).reasons
    assert reason == "exact match 0.8996 is below the threshold 0.9000"


def test_worse_than_production_by_more_than_the_margin_fails() -> None:
    production = version("3", 0.951)
    decision = evaluation_gate(version("4", 0.903), production)
    assert not decision.passed
    assert decision.reasons == (
        "exact match 0.903 is worse than production version 3's 0.951 by more than the margin 0.010",
    )
    assert decision.production == "3" and decision.candidate == "4"


def test_both_reasons_when_below_the_threshold_and_worse_than_production() -> None:
    decision = evaluation_gate(version("4", 0.5), version("3", 0.95))
    assert decision.reasons == (
        "exact match 0.500 is below the threshold 0.900",
        "exact match 0.500 is worse than production version 3's 0.950 by more than the margin 0.010",
    )


@pytest.mark.parametrize("candidate", [0.94, 0.945, 0.95, 0.99])
def test_within_the_margin_or_better_passes(candidate: float) -> None:
    # 0.95 - 0.94 is 0.010000000000000009 in binary floating point: exactly the margin still passes.
    decision = evaluation_gate(version("4", candidate), version("3", 0.95))
    assert decision.passed, decision.reasons
    assert decision.summary() == "passed: exact match at least 0.900 and within 0.010 of production version 3's"


def test_a_larger_margin_allows_a_larger_regression() -> None:
    assert not evaluation_gate(version("4", 0.92), version("3", 0.95)).passed
    assert evaluation_gate(version("4", 0.92), version("3", 0.95), max_regression=0.05).passed


def test_a_version_without_metrics_fails_telling_to_evaluate_it_first() -> None:
    decision = evaluation_gate(version("5", None), version("3", 0.95))
    assert not decision.passed
    assert decision.reasons == (
        "version 5 has no recorded evaluation; evaluate it first (`waldinger model evaluate --version 5`)",
    )


def test_metrics_without_exact_match_fail_naming_what_there_is() -> None:
    (reason,) = evaluation_gate(version("5", None, parse_rate=1.0, latency_p50_ms=40.0), None).reasons
    assert reason == (
        "version 5's evaluation has no exact_match (it has latency_p50_ms, parse_rate); evaluate it again "
        "(`waldinger model evaluate --version 5`)"
    )


def test_a_production_version_without_metrics_cannot_be_compared_with() -> None:
    (reason,) = evaluation_gate(version("4", 0.97), version("3", None)).reasons
    assert reason == (
        "production version 3 has no recorded evaluation; evaluate it first (`waldinger model evaluate --version "
        "3`), so there is nothing to compare with"
    )


def test_no_production_version_only_the_threshold_counts() -> None:
    decision = evaluation_gate(version("1", 0.91), None)
    assert decision.passed and decision.production is None


def test_the_production_version_compared_with_itself_passes_the_regression_part() -> None:
    production = version("3", 0.93)
    production = ModelVersion(**{**production.to_json(), "stage": PRODUCTION})
    assert evaluation_gate(production, production).passed
    # ... but not the threshold, if it was raised since it was promoted
    assert evaluation_gate(production, production, min_exact_match=0.95).reasons == (
        "exact match 0.930 is below the threshold 0.950",
    )


@pytest.mark.parametrize("thresholds", [{"min_exact_match": 1.2}, {"max_regression": -0.01}])
def test_thresholds_outside_zero_to_one_are_refused(thresholds: dict) -> None:
    with pytest.raises(ValueError, match="is not a fraction from 0 to 1"):
        evaluation_gate(version("4", 0.95), None, **thresholds)
