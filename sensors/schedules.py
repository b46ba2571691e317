"""The daily schedule: the daily_batch job (drift gate first) for the day that just ended, the latest
complete partition. Today's partition is still filling; the batch input sensor handles it as rows arrive."""

import datetime as dt

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from resources import environment
from sensors.cursors import TRIGGER_TAG
from waldinger_assets.batch.jobs import daily_batch_job
from waldinger_assets.batch.partitions import daily_partitions

DAILY_BATCH_SCHEDULE = "daily_batch_schedule"


def day_to_run(scheduled: dt.datetime) -> dt.date:
    """The UTC day that ended before the scheduled time."""
    return scheduled.astimezone(dt.UTC).date() - dt.timedelta(days=1)


@schedule(
    name=DAILY_BATCH_SCHEDULE,
    job=daily_batch_job,
    cron_schedule=environment.daily_batch_cron(),
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Runs daily_batch (drift gate, deployment, input, outputs) for the day that just ended.",
)
def daily_batch_schedule(context: ScheduleEvaluationContext):
    day = day_to_run(context.scheduled_execution_time)
    if day.isoformat() < daily_partitions.get_first_partition_key():
        return SkipReason(f"{day} is before the first batch partition ({daily_partitions.start.date()}).")
    return RunRequest(
        run_key=f"daily-{day.isoformat()}", partition_key=day.isoformat(), tags={TRIGGER_TAG: DAILY_BATCH_SCHEDULE}
    )
