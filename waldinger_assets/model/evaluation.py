"""A registered version's evaluation, recorded: run it over the eval split of the current training dataset
(waldinger_assets.training), store the metrics with the version in the registry, and judge them against the
promotion threshold. The `evaluation_on_the_eval_split` check and `waldinger model evaluate` both run this."""

from dataclasses import dataclass

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from resources import environment
from resources.batch_files import BatchFilesResource
from resources.serving import BatchComputeResource
from waldinger_assets.training.assets import frame_rows
from waldinger_assets.training.dataset import dataset_version, split_records
from waldinger_assets.training.evaluate_version import evaluate_registered_version
from waldinger_assets.training.evaluation import Evaluation
from waldinger_assets.training.names import EVAL_SPLIT


@dataclass(frozen=True)
class RecordedEvaluation:
    name: str
    version: str
    evaluation: Evaluation
    figures: dict
    dataset_version: str
    threshold: float

    @property
    def exact_match(self) -> float:
        return self.evaluation.metrics["exact_match"]

    @property
    def passed(self) -> bool:
        return self.exact_match >= self.threshold

    def summary(self) -> str:
        verdict = "meets" if self.passed else "is below"
        return (
            f"{self.name} version {self.version}: exact match {self.exact_match:.3f} on {self.evaluation.rows} "
            f"eval rows {verdict} the promotion threshold {self.threshold:.3f} (parse rate "
            f"{self.evaluation.metrics['parse_rate']:.3f}; dataset {self.dataset_version[:12]})"
        )

    def to_json(self) -> dict:
        return {
            "model": self.name,
            "version": self.version,
            "metrics": self.evaluation.metrics,
            "eval_rows": self.evaluation.rows,
            "evaluated_on": self.dataset_version,
            "threshold": self.threshold,
            "passed": self.passed,
            "eval_seconds": self.figures.get("eval_seconds"),
        }

    def check_result(self) -> AssetCheckResult:
        return AssetCheckResult(
            passed=self.passed,
            severity=AssetCheckSeverity.ERROR,
            description=self.summary(),
            metadata={
                "version": MetadataValue.text(self.version),
                **{key: MetadataValue.float(float(value)) for key, value in self.evaluation.metrics.items()},
                "eval_rows": MetadataValue.int(self.evaluation.rows),
                "threshold": MetadataValue.float(self.threshold),
                "evaluated_on": MetadataValue.text(self.dataset_version),
                "eval_seconds": MetadataValue.float(float(self.figures.get("eval_seconds", 0.0))),
                "wrong_answers": MetadataValue.json(self.evaluation.failures),
            },
        )


def evaluate_and_record(
    context,
    registry,
    version,
    training_dataset,
    batch_compute: BatchComputeResource,
    batch_files: BatchFilesResource,
) -> RecordedEvaluation:
    rows = frame_rows(training_dataset)
    records = split_records(rows, EVAL_SPLIT)
    evaluation, figures = evaluate_registered_version(
        # Pipes needs the op's context (an asset check's context has no assets definition of its own).
        getattr(context, "op_execution_context", context),
        registry=registry,
        version=version,
        eval_records=records,
        batch_compute=batch_compute,
        batch_files=batch_files,
    )
    recorded = RecordedEvaluation(
        version.name,
        version.version,
        evaluation,
        figures,
        dataset_version(rows),
        environment.promotion_gate_settings().min_exact_match,
    )
    registry.record_evaluation(
        version.name,
        version.version,
        {**evaluation.metrics, "eval_rows": float(evaluation.rows)},
        recorded.dataset_version,
    )
    context.log.info(recorded.summary())
    return recorded
