"""The one place that answers "which environment am I in?" and reads the settings that follow from it.

Every resource choice reads `current_environment()`; nothing else in the project looks at environment
variables directly. Local is the embedded default (runs offline); prod talks to Snowflake and Azure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

ENVIRONMENT_VARIABLE = "WALDINGER_ENV"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Databases whose definitions the pipeline snapshots, when WALDINGER_DATABASES does not name others.
LOCAL_DATABASES = ("RAW", "ANALYTICS", "WALDINGER")


class Environment(StrEnum):
    LOCAL = "local"
    PROD = "prod"


class SettingsError(RuntimeError):
    """A setting is missing or invalid; the message names the environment variable and what to do."""


def current_environment() -> Environment:
    raw = os.environ.get(ENVIRONMENT_VARIABLE, Environment.LOCAL.value).strip().lower()
    try:
        return Environment(raw)
    except ValueError:
        raise SettingsError(
            f"{ENVIRONMENT_VARIABLE}={raw!r} is not an environment; set it to 'local' (embedded default) "
            "or 'prod' (Snowflake and Azure), or unset it for local."
        ) from None


def data_dir() -> Path:
    """The project's data directory: embedded warehouse files, registry, outbox, Dagster home."""
    configured = os.environ.get("WALDINGER_DATA_DIR")
    return Path(configured).expanduser().resolve() if configured else PROJECT_ROOT / ".waldinger"


def configured_databases() -> tuple[str, ...]:
    raw = os.environ.get("WALDINGER_DATABASES", "")
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if names:
        return names
    if current_environment() is Environment.PROD:
        raise SettingsError(
            "WALDINGER_DATABASES is not set; export it as a comma-separated list of the Snowflake databases "
            "to snapshot (e.g. RAW,ANALYTICS), or run with WALDINGER_ENV=local."
        )
    return LOCAL_DATABASES


def requested_warehouse_port() -> int | None:
    """A fixed port for the embedded warehouse, if the user asked for one; otherwise a free one is picked."""
    raw = os.environ.get("WALDINGER_WAREHOUSE_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"WALDINGER_WAREHOUSE_PORT={raw!r} is not a TCP port; set it to 1-65535 or unset it.")
    return int(raw)


@dataclass(frozen=True)
class SnowflakeProdSettings:
    """Names of the environment variables that configure prod Snowflake (values are read by Dagster's EnvVar,
    so secrets never appear in run config or the UI)."""

    account_var: str = "SNOWFLAKE_ACCOUNT"
    user_var: str = "SNOWFLAKE_USER"
    role_var: str = "SNOWFLAKE_ROLE"
    warehouse_var: str = "SNOWFLAKE_WAREHOUSE"
    private_key_var: str | None = None
    private_key_path_var: str | None = None
    private_key_password_var: str | None = None


def snowflake_prod_settings() -> SnowflakeProdSettings:
    """Checks, at definitions load, that prod Snowflake is fully configured (key-pair auth)."""
    required = ["SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_ROLE", "SNOWFLAKE_WAREHOUSE"]
    missing = [name for name in required if not os.environ.get(name)]
    has_key = bool(os.environ.get("SNOWFLAKE_PRIVATE_KEY"))
    has_key_path = bool(os.environ.get("SNOWFLAKE_PRIVATE_KEY_PATH"))
    if not has_key and not has_key_path:
        missing.append("SNOWFLAKE_PRIVATE_KEY_PATH (or SNOWFLAKE_PRIVATE_KEY)")
    if missing:
        raise SettingsError(
            f"WALDINGER_ENV=prod needs these environment variables: {', '.join(missing)}. "
            "Export them (key-pair auth; see README 'Switching to prod'), or run with WALDINGER_ENV=local."
        )
    if has_key_path and not Path(os.environ["SNOWFLAKE_PRIVATE_KEY_PATH"]).expanduser().is_file():
        raise SettingsError(
            f"SNOWFLAKE_PRIVATE_KEY_PATH points to {os.environ['SNOWFLAKE_PRIVATE_KEY_PATH']!r}, which is not a "
            "file; point it at the PEM private key registered for SNOWFLAKE_USER."
        )
    return SnowflakeProdSettings(
        private_key_var=None if has_key_path else "SNOWFLAKE_PRIVATE_KEY",
        private_key_path_var="SNOWFLAKE_PRIVATE_KEY_PATH" if has_key_path else None,
        private_key_password_var=(
            "SNOWFLAKE_PRIVATE_KEY_PASSWORD" if os.environ.get("SNOWFLAKE_PRIVATE_KEY_PASSWORD") else None
        ),
    )
