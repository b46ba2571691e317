"""Drift alert sensor: every failed evaluation of the blocking contract check (and every run that ended
before the check could decide) reaches the team's alert channel with a link to the run, unless the drift
report of that run already sent it. The cursor is the id of the last check execution handled."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, sensor
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from resources import environment
from resources.alerts import AlertsResource
from resources.schema_drift import SchemaDriftSettings
from sensors.cursors import dump_cursor, load_cursor
from waldinger_assets.schema_drift.alerting import check_failure_alert, report_alerted
from waldinger_assets.schema_drift.gate import CONTRACT_CHECK_KEY

DRIFT_ALERT_SENSOR = "drift_alert_sensor"
HISTORY_PAGE = 100


@sensor(
    name=DRIFT_ALERT_SENSOR,
    minimum_interval_seconds=environment.sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Alerts the team (webhook, or the local outbox) when the blocking drift check fails or cannot run, "
        "with a link to the run, unless the run's drift report already sent that alert."
    ),
)
def drift_alert_sensor(
    context: SensorEvaluationContext, alerts: AlertsResource, schema_drift: SchemaDriftSettings
) -> SensorResult:
    instance = context.instance
    records = instance.event_log_storage.get_asset_check_execution_history(CONTRACT_CHECK_KEY, limit=HISTORY_PAGE)
    previous = load_cursor(context.cursor)
    if previous is None:  # start from now: past failures were alerted when they happened
        last_id = max((record.id for record in records), default=0)
        return SensorResult(
            skip_reason="First tick: watching new drift check results.", cursor=dump_cursor({"id": last_id})
        )
    handled, sent = previous["id"], []
    history = schema_drift.history()
    for record in sorted((r for r in records if r.id > previous["id"]), key=lambda r: r.id):
        if record.status == AssetCheckExecutionRecordStatus.PLANNED:
            run = instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                break  # still running: decide on a later tick, in order
            report = None  # the run ended without evaluating the check
        elif record.status == AssetCheckExecutionRecordStatus.SUCCEEDED:
            handled = record.id
            continue
        else:
            report = history.report_for_run(record.run_id)
            if report_alerted(report):
                handled = record.id
                continue
        title, text = check_failure_alert(report, record.run_id)
        link = f"{schema_drift.dagster_ui_url}/runs/{record.run_id}"
        delivery = alerts.send(title, text, link=link, kind="drift_check")
        sent.append(f"{record.run_id} ({delivery.delivered_to})")
        handled = record.id
    cursor = dump_cursor({"id": handled})
    if not sent:
        return SensorResult(skip_reason="No drift check failure to alert.", cursor=cursor)
    context.log.info(f"Alerted drift check failures of run(s) {', '.join(sent)}")
    return SensorResult(cursor=cursor)
