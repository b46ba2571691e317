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
