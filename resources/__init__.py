"""Resources, chosen per environment in one place (`build_resources`)."""

from __future__ import annotations

from typing import Any


def build_resources() -> dict[str, Any]:
    """Every resource the definitions use, picked by WALDINGER_ENV (see resources.environment).

    In prod a missing setting raises SettingsError here, at definitions load, naming the variable to set.
    """
    from dagster import FilesystemIOManager

    from resources import environment
    from resources.alerts import alerts_resource
    from resources.batch_files import batch_files_resource
    from resources.model_registry import model_registry_resource
    from resources.model_source import model_source_resource
    from resources.schema_drift import schema_drift_settings
    from resources.serving import batch_compute_resource, realtime_deployment_resource
    from resources.warehouse import warehouse_resource

    if environment.current_environment() is environment.Environment.PROD:
        environment.require_prod_settings()
    return {
        "warehouse": warehouse_resource(),
        "schema_drift": schema_drift_settings(),
        "alerts": alerts_resource(),
        "model_registry": model_registry_resource(),
        "model_source_settings": model_source_resource(),
        "realtime_endpoint": realtime_deployment_resource(),
        "batch_compute": batch_compute_resource(),
        "batch_files": batch_files_resource(),
        "io_manager": FilesystemIOManager(base_dir=str(environment.storage_dir())),
    }
