"""Resources, chosen per environment in one place (`build_resources`)."""

from __future__ import annotations

from typing import Any


def build_resources() -> dict[str, Any]:
    """Every resource the definitions use, picked by WALDINGER_ENV (see resources.environment).

    In prod a missing setting raises SettingsError here, at definitions load, naming the variable to set.
    """
    # Imported here, not at the top: this __init__ runs on every `import resources.<module>`, and the resource
    # modules import Dagster; the embedded warehouse server process and `waldinger --help` need none of it.
    from resources import environment
    from resources.alerts import alerts_resource
    from resources.batch_files import batch_files_resource
    from resources.model_registry import model_registry_resource
    from resources.model_source import model_source_resource
    from resources.schema_drift import schema_drift_settings
    from resources.serving import batch_compute_resource, realtime_deployment_resource
    from resources.training import training_compute_resource
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
        "training_compute": training_compute_resource(),
        "io_manager": asset_values_io_manager(),
    }


def asset_values_io_manager():
    """Dagster's IO manager: asset values at run-scoped paths, on disk locally, in ADLS Gen2 in prod."""
    from resources import environment

    storage = environment.asset_value_storage()
    if storage.adls2_account:  # dagster_azure and the Azure SDK load only for ADLS2 storage (prod)
        from dagster_azure.adls2 import ADLS2DefaultAzureCredential, ADLS2Resource

        from resources.asset_values_adls2 import ADLS2AssetValuesIOManager

        return ADLS2AssetValuesIOManager(
            adls2=ADLS2Resource(
                storage_account=storage.adls2_account, credential=ADLS2DefaultAzureCredential(kwargs={})
            ),
            adls2_file_system=storage.adls2_container,
            adls2_prefix=storage.adls2_prefix,
        )
    from resources.asset_values import LocalAssetValuesIOManager

    return LocalAssetValuesIOManager(base_dir=str(storage.directory))
