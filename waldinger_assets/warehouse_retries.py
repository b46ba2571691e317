"""The retry policy of every step that reads or writes the warehouse."""

from dagster import Backoff, Jitter, RetryPolicy

from resources import environment


def warehouse_retry_policy() -> RetryPolicy:
    """For the steps that read or write the warehouse: a dropped connection or a warehouse restart is retried
    with exponential backoff (by default after about 10 s, 30 s and 70 s, each ±10 s of jitter; README "Faults
    and retries"). Refusals that a retry cannot change (the drift gate) raise Failure(allow_retries=False)."""
    settings = environment.step_retries()
    return RetryPolicy(
        max_retries=settings.max_retries, delay=settings.delay_s, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    )
