"""Dagster's own deployment on Azure: the instance config, the orchestrator image and the run launcher."""
