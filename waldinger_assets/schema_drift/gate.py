"""The drift gate: ONE rule, asked by everything that can let batch outputs through.

The rule: no unaccepted breaking change on a contract object (`blocking_changes`). The blocking check
`contract_objects_have_no_breaking_drift` evaluates it on each run's drift report. A blocking check only stops
what comes after it in the SAME run (Dagster issue #17332), so the other callers ask for the latest evaluation
of that check instead (`drift_gate_state`):
- the batch outputs' automation condition (`DRIFT_GATE_OPEN`, Dagster's own reading of the same check);
- the batch outputs asset (`refuse_unless_open`), so a run without the gate in it, e.g. an asset backfill of
  the outputs alone, refuses to write while drift is unaccepted;
- the batch input sensor, which holds back days while the gate is closed and requests them once it opens;
- the drift alert sensor, which alerts on every failed evaluation (`failed_evaluations`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from dagster import AssetCheckKey, AssetKey, AutomationCondition, DagsterEventType, DagsterInstance, Failure

from resources.dagster_internals import AssetCheckExecutionRecordStatus
from waldinger_assets.schema_drift.diff import Change
from waldinger_assets.schema_drift.names import CONTRACT_CHECK, DRIFT_REPORT_KEY
from waldinger_assets.schema_drift.report import DriftReport

CONTRACT_CHECK_KEY = AssetCheckKey(AssetKey(DRIFT_REPORT_KEY), CONTRACT_CHECK)
_COMPLETED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
PASSED, FAILED, NEVER_RUN = "passed", "failed", "never_run"
# Declarative automation reads the same check: a partition waits while its deps' blocking checks fail.
DRIFT_GATE_OPEN = AutomationCondition.all_deps_blocking_checks_passed()


def blocking_changes(report: DriftReport) -> Sequence[Change]:
    """The rule: the report's unaccepted breaking changes on contract objects (for a rename, under either name)."""
    return report.contract_breaking


@dataclass(frozen=True)
class GateState:
    status: str  # passed, failed or never_run
    run_id: str | None = None
    at: float | None = None  # when the deciding evaluation was stored (epoch seconds)

    @property
    def closed(self) -> bool:
        return self.status == FAILED

    def describe(self) -> str:
        if self.status == NEVER_RUN:
            return f"the drift check {CONTRACT_CHECK} has never run"
        return f"the drift check {CONTRACT_CHECK} {self.status} in run {self.run_id}"


def _passed(record) -> bool:
    evaluation = record.evaluation
    return record.status == AssetCheckExecutionRecordStatus.SUCCEEDED and (evaluation is None or evaluation.passed)


def drift_gate_state(instance: DagsterInstance, run_id: str | None = None) -> GateState:
    """The latest completed evaluation of the contract check; in a run that evaluated it, that run's own."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        CONTRACT_CHECK_KEY, limit=50, status=_COMPLETED
    )
    if not records:
        return GateState(NEVER_RUN)
    own = [record for record in records if run_id and record.run_id == run_id]
    deciding = (own or records)[0]
    return GateState(PASSED if _passed(deciding) else FAILED, deciding.run_id, deciding.create_timestamp)


def refuse_unless_open(instance: DagsterInstance, run_id: str, what: str) -> None:
    """Raises a non-retried Failure unless the gate is open: this run's evaluation if it made one, else the
    latest one."""
    gate = drift_gate_state(instance, run_id)
    if gate.status != PASSED:
        raise Failure(
            description=(
                f"Not writing {what}: {gate.describe()}. Fix the warehouse or accept the drift with "
                "`waldinger drift accept`, then run the daily_batch job (it runs the drift gate first), or "
                "materialize waldinger/schema_drift/drift_report before the outputs."
            ),
            allow_retries=False,
        )


def check_failed_in_run(instance: DagsterInstance, run_id: str) -> bool:
    """Whether the contract check failed in this run (so the gate, not something else, stopped it)."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.asset_check_key == CONTRACT_CHECK_KEY and not evaluation.passed:
            return True
    return False


def check_history(instance: DagsterInstance, limit: int):
    """The latest executions of the contract check (every status), newest first."""
    return instance.event_log_storage.get_asset_check_execution_history(CONTRACT_CHECK_KEY, limit=limit)
