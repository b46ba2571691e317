"""The prod IO manager: asset values in an ADLS Gen2 container, at run-scoped paths (resources.asset_values).

Its own module because dagster-azure imports the Azure SDKs, which loading the local definitions never does.
"""

from dagster import ConfigurableIOManagerFactory, InitResourceContext, ResourceDependency
from dagster_azure.adls2 import ADLS2Resource, PickledObjectADLS2IOManager
from pydantic import Field
from upath import UPath

from resources.asset_values import RunScopedValues


class ADLS2AssetValuesIOManager(ConfigurableIOManagerFactory):
    """Asset values as blobs (Parquet for DataFrames, pickles otherwise) in an ADLS Gen2 container (dagster-azure's
    ADLS2 IO manager's storage), at run-scoped paths (see the module docstring). The Dagster identity, the run
    jobs and CI's login can write the container (infra_pulumi provisions it)."""

    adls2: ResourceDependency[ADLS2Resource] = Field(description="dagster-azure's ADLS2Resource (managed identity).")
    adls2_file_system: str = Field(description="The container (ADLS Gen2 file system) of the asset values.")
    adls2_prefix: str = Field(default="dagster", description="Folder of the values inside the container.")

    def create_io_manager(self, context: InitResourceContext) -> RunScopedValues:
        files = PickledObjectADLS2IOManager(
            self.adls2_file_system,
            self.adls2.adls2_client,
            self.adls2.blob_client,
            self.adls2.lease_client_constructor,
            self.adls2_prefix,
        )
        return adls2_run_scoped_values(files, self.adls2_prefix)


def adls2_run_scoped_values(files: PickledObjectADLS2IOManager, prefix: str) -> RunScopedValues:
    """Run-scoped values on the ADLS2 IO manager's files; Parquet files through its Data Lake file system."""
    file_system = files.file_system_client

    def write_bytes(path: UPath, data: bytes) -> None:
        file_system.create_file(path.as_posix()).upload_data(data, overwrite=True)

    def read_bytes(path: UPath) -> bytes:
        return file_system.get_file_client(path.as_posix()).download_file().readall()

    return RunScopedValues(files, UPath(prefix), write_bytes=write_bytes, read_bytes=read_bytes)
