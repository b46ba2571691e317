"""The warehouse resource: dagster-snowflake's SnowflakeResource, pointed at the embedded server locally and
at a Snowflake account (key-pair auth) in prod. Assets ask for `SnowflakeResource` and never know which."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import EnvVar, get_dagster_logger
from dagster_snowflake import SnowflakeResource
from pydantic import Field

from resources import environment
from resources.embedded_warehouse import control


class EmbeddedSnowflakeResource(SnowflakeResource):
    """SnowflakeResource that reaches the embedded server through the real Snowflake connector.

    The server's port is only known once it runs, so it is read at connection time; if the server is not
    running, it is started (with `autostart`, the default) or the error says how to start it.
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
    def get_connection(self, raw_conn: bool = True) -> Iterator:
        import snowflake.connector

        connection = snowflake.connector.connect(**{**self._connection_args, **self.endpoint().connection_args()})
        try:
            yield connection
            if not self.autocommit:
                connection.commit()
        finally:
            connection.close()


def embedded_snowflake(data_dir: Path, autostart: bool = True) -> EmbeddedSnowflakeResource:
    return EmbeddedSnowflakeResource(
        account=control.ACCOUNT,
        user=control.USER,
        password=control.PASSWORD,
        data_dir=str(data_dir),
        autostart=autostart,
    )


def prod_snowflake() -> SnowflakeResource:
    settings = environment.snowflake_prod_settings()
    key_args = {}
    if settings.private_key_path_var:
        key_args["private_key_path"] = EnvVar(settings.private_key_path_var)
    if settings.private_key_var:
        key_args["private_key"] = EnvVar(settings.private_key_var)
    if settings.private_key_password_var:
        key_args["private_key_password"] = EnvVar(settings.private_key_password_var)
    return SnowflakeResource(
        account=EnvVar(settings.account_var),
        user=EnvVar(settings.user_var),
        role=EnvVar(settings.role_var),
        warehouse=EnvVar(settings.warehouse_var),
        **key_args,
    )


def warehouse_resource() -> SnowflakeResource:
    if environment.current_environment() is environment.Environment.PROD:
        return prod_snowflake()
    return embedded_snowflake(environment.data_dir())
