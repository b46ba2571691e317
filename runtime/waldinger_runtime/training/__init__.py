"""The training job that Dagster runs through Pipes (waldinger_runtime.training.job)."""
