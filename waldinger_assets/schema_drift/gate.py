"""The drift gate across runs. A blocking check only stops what comes after it in the SAME run (Dagster
issue #17332), so everything that can write batch outputs outside such a run asks the instance instead:
what did the latest completed evaluation of the contract check say?

Used by the batch outputs asset (so a run without the gate in it, e.g. an asset backfill of the outputs
alone, refuses to write while drift is unaccepted) and by the batch input sensor (which holds back days
while the gate is closed and requests them once it opens).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetCheckKey, AssetKey, DagsterEventType, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from waldinger_assets.schema_drift.assets import CONTRACT_CHECK, DRIFT_REPORT_KEY

CONTRACT_CHECK_KEY = AssetCheckKey(AssetKey(DRIFT_REPORT_KEY), CONTRACT_CHECK)
_COMPLETED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
PASSED, FAILED, NEVER_RUN = "passed", "failed", "never_run"


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


def check_failed_in_run(instance: DagsterInstance, run_id: str) -> bool:
    """Whether the contract check failed in this run (so the gate, not something else, stopped it)."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.asset_check_key == CONTRACT_CHECK_KEY and not evaluation.passed:
            return True
    return False
