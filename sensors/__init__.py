"""Sensors and schedules that start runs (schema changes, new model versions, new input data, drift alerts),
the daily schedule, and the automation sensor that evaluates the batch outputs' automation condition. All
run by default once the daemon runs; each can be stopped from the UI. `defs` holds them all."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus, Definitions

from resources import environment
from sensors.batch_input import batch_input_sensor
from sensors.drift_alert import drift_alert_sensor
from sensors.model_version import model_version_sensor
from sensors.schedules import daily_batch_schedule
from sensors.schema_change import schema_change_sensor
from waldinger_assets.batch.names import BATCH_OUTPUTS_KEY

BATCH_AUTOMATION_SENSOR = "batch_automation_sensor"


def all_sensors() -> list:
    automation = AutomationConditionSensorDefinition(
        BATCH_AUTOMATION_SENSOR,
        target=AssetSelection.assets(BATCH_OUTPUTS_KEY),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=environment.sensor_interval_seconds(),
        description="Evaluates the batch outputs' automation condition (eager, behind the drift gate).",
    )
    return [schema_change_sensor, model_version_sensor, batch_input_sensor, drift_alert_sensor, automation]


def all_schedules() -> list:
    return [daily_batch_schedule]


defs = Definitions(sensors=all_sensors(), schedules=all_schedules())
