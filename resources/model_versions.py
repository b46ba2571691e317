"""What a registered model version is, as both registries return it: a plain dataclass with no I/O, so pure logic
(the evaluation gate) can take one without importing a registry.

`metrics` are the version's scores on the evaluation split (e.g. exact_match, parse_rate, latency_p50_ms) and
`evaluated_on` names the dataset version they were measured on; {} and None until the version is evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

SHA256_TAG = "artifact_sha256"
PRODUCTION = "Production"
ARCHIVED = "Archived"
NONE_STAGE = "None"

# Metric names become Azure ML tag keys (`eval_<name>`), so they keep to characters every tag store accepts.
METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    path: str
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    stage: str = NONE_STAGE
    created_at: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    evaluated_on: str | None = None

    @property
    def sha256(self) -> str:
        return self.tags.get(SHA256_TAG, "")

    def to_json(self) -> dict:
        return asdict(self)


def checked_evaluation(metrics: Mapping[str, object], evaluated_on: str) -> tuple[dict[str, float], str]:
    """The metrics as floats and the dataset version, or a ValueError naming what is wrong (asked by both
    registries' record_evaluation, so a metric that one registry refuses the other refuses too)."""
    if not metrics:
        raise ValueError("An evaluation needs at least one metric (e.g. exact_match); none were given.")
    checked = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not METRIC_NAME.match(name):
            raise ValueError(
                f"Metric name {name!r} is not usable: use lower-case letters, digits and underscores, starting with "
                "a letter (e.g. exact_match)."
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"Metric {name} is {value!r}; a metric is a finite number.")
        checked[name] = float(value)
    if not isinstance(evaluated_on, str) or not evaluated_on.strip():
        raise ValueError("evaluated_on must name the dataset version the metrics were measured on; it is empty.")
    return checked, evaluated_on.strip()
