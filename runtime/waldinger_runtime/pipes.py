"""Dagster Pipes for the jobs that Dagster starts (the batch job, the training job): over the environment when
PipesSubprocessClient starts them, over Blob Storage when PipesAzureMLClient runs them on Azure ML."""


def open_pipes(blob_account_url: str | None):
    """Pipes over the environment (PipesSubprocessClient) or over Blob Storage (PipesAzureMLClient); run by
    hand, a no-op context without the warning dagster-pipes prints for that case."""
    import warnings

    from dagster_pipes import DagsterPipesWarning, PipesEnvVarParamsLoader, open_dagster_pipes

    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        warnings.simplefilter("ignore", DagsterPipesWarning)
    if not blob_account_url:
        return open_dagster_pipes()
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient
    from dagster_pipes import PipesAzureBlobStorageContextLoader, PipesAzureBlobStorageMessageWriter

    client = BlobServiceClient(blob_account_url, credential=DefaultAzureCredential())
    return open_dagster_pipes(
        context_loader=PipesAzureBlobStorageContextLoader(client=client),
        message_writer=PipesAzureBlobStorageMessageWriter(client=client),
    )


def report_figures(pipes, figures: dict) -> None:
    """The job's figures back to Dagster: as the asset's materialization metadata (`job_<name>`) when the step
    targets one asset, else (an asset check's step) as a custom message with the same keys."""
    metadata = {f"job_{key}": value for key, value in figures.items()}
    if pipes.is_asset_step and len(pipes.asset_keys) == 1:
        pipes.report_asset_materialization(metadata=metadata)
    else:
        pipes.report_custom_message(metadata)
