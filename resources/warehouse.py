"""The warehouse resource: dagster-snowflake's SnowflakeResource, pointed at the embedded server locally and
at a Snowflake account (key-pair auth) in prod. Assets ask for a `WarehouseResource` and never know which.

The SnowflakeResource is built when a connection is first needed, not at definitions load: importing the
Snowflake connector imports azure-identity (for workload identity auth), and loading the definitions must stay
free of Azure SDKs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, EnvVar, get_dagster_logger
from pydantic import Field

from resources import environment
from resources.embedded_warehouse import control

if TYPE_CHECKING:
    from dagster_snowflake import SnowflakeResource


class WarehouseResource(ConfigurableResource):
    """Snowflake, wherever it is. `get_connection()` yields a Snowflake connector connection."""

    def snowflake_resource(self) -> SnowflakeResource:
        raise NotImplementedError

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        with self.snowflake_resource().get_connection() as connection:
            yield connection


class EmbeddedWarehouseResource(WarehouseResource):
    """The embedded Snowflake server, reached through the real connector.

    Its port is known only once it runs, so it is read at connection time; if the server is not running it is
    started (`autostart`, the default) or the error says how to start it.
    """

    data_dir: str = Field(description="The project's data directory (holds warehouse/).")
    autostart: bool = Field(default=True, description="Start the embedded warehouse when it is not running.")

    def endpoint(self) -> control.WarehouseStatus:
        data_dir = Path(self.data_dir)
        current = control.status(data_dir)
        if current.running:
            return current
        if not self.autostart:
            raise control.WarehouseError(control.not_running_message(data_dir))
        get_dagster_logger().info(f"Starting the embedded warehouse in {control.warehouse_dir(data_dir)}")
        return control.start(data_dir, port=environment.requested_warehouse_port())

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        """A connection to the server; if the server dies while the connection is in use, a WarehouseError that
        says so replaces the connector's retry noise (the step's RetryPolicy then retries: the next connection
        starts the server again)."""
        from snowflake.connector.errors import Error as ConnectorError

        serving = self.endpoint()
        try:
            with self._snowflake_resource(serving).get_connection() as connection:
                yield connection
        except ConnectorError as error:
            now = control.status(Path(self.data_dir))
            if now.pid == serving.pid:
                raise
            raise control.WarehouseError(
                control.died_message(serving.log_file, serving.pid, now.running, error)
            ) from error

    def snowflake_resource(self) -> SnowflakeResource:
        return self._snowflake_resource(self.endpoint())

    def _snowflake_resource(self, serving: control.WarehouseStatus) -> SnowflakeResource:
        from dagster_snowflake import SnowflakeResource

        connection_args = serving.connection_args()
        return SnowflakeResource(
            account=connection_args.pop("account"),
            user=connection_args.pop("user"),
            password=connection_args.pop("password"),
            additional_snowflake_connection_args=connection_args,
        )


class SnowflakeWarehouseResource(WarehouseResource):
    """A Snowflake account with key-pair auth. Fields hold `EnvVar`s, so no secret is in the definitions."""

    account: str
    user: str
    role: str
    warehouse: str
    private_key: str | None = None
    private_key_path: str | None = None
    private_key_password: str | None = None

    def snowflake_resource(self) -> SnowflakeResource:
        from dagster_snowflake import SnowflakeResource

        return SnowflakeResource(
            account=self.account,
            user=self.user,
            role=self.role,
            warehouse=self.warehouse,
            private_key=self.private_key,
            private_key_path=self.private_key_path,
            private_key_password=self.private_key_password,
        )


def embedded_warehouse(data_dir: Path, autostart: bool = True) -> EmbeddedWarehouseResource:
    return EmbeddedWarehouseResource(data_dir=str(data_dir), autostart=autostart)


def prod_warehouse() -> SnowflakeWarehouseResource:
    settings = environment.snowflake_prod_settings()

    def env(name: str | None) -> EnvVar | None:
        return EnvVar(name) if name else None

    return SnowflakeWarehouseResource(
        account=EnvVar(settings.account_var),
        user=EnvVar(settings.user_var),
        role=EnvVar(settings.role_var),
        warehouse=EnvVar(settings.warehouse_var),
        private_key=env(settings.private_key_var),
        private_key_path=env(settings.private_key_path_var),
        private_key_password=env(settings.private_key_password_var),
    )


def warehouse_resource() -> WarehouseResource:
    if environment.current_environment() is environment.Environment.PROD:
        return prod_warehouse()
    return embedded_warehouse(environment.data_dir())
