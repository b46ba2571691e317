"""The one place that answers "which environment am I in?" and reads the settings that follow from it.

Every resource choice reads `current_environment()`; nothing else in the project looks at environment
variables directly. Local is the embedded default (runs offline); prod talks to Snowflake and Azure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from waldinger_runtime.settings import SERVING_API_KEY_VARIABLE

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
    return _port_setting("WALDINGER_WAREHOUSE_PORT")


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


def missing_prod_settings() -> list[str]:
    """Every required prod variable that is not set (so one error can name them all)."""
    required = ["SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_ROLE", "SNOWFLAKE_WAREHOUSE", "WALDINGER_DATABASES"]
    missing = [name for name in required if not os.environ.get(name, "").strip()]
    if not os.environ.get("SNOWFLAKE_PRIVATE_KEY") and not os.environ.get("SNOWFLAKE_PRIVATE_KEY_PATH"):
        missing.append("SNOWFLAKE_PRIVATE_KEY_PATH (or SNOWFLAKE_PRIVATE_KEY)")
    missing += [name for name in AZURE_ML_VARIABLES if not os.environ.get(name, "").strip()]
    missing += [name for name in SERVING_PROD_VARIABLES if not os.environ.get(name, "").strip()]
    missing += [name for name in ASSET_VALUE_PROD_VARIABLES if not os.environ.get(name, "").strip()]
    if not any(os.environ.get(name, "").strip() for name in MODEL_SOURCE_VARIABLES):
        missing.append("WALDINGER_MODEL_PATH (or WALDINGER_MODEL_HF_ID or WALDINGER_MODEL_AZUREML_URI)")
    return missing


def require_prod_settings() -> None:
    missing = missing_prod_settings()
    if missing:
        raise SettingsError(
            f"WALDINGER_ENV=prod needs these environment variables: {', '.join(missing)}. "
            "Export them (key-pair auth; see README 'Switching to prod'), or run with WALDINGER_ENV=local."
        )


def snowflake_prod_settings() -> SnowflakeProdSettings:
    """Checks, at definitions load, that prod Snowflake is fully configured (key-pair auth)."""
    require_prod_settings()
    has_key_path = bool(os.environ.get("SNOWFLAKE_PRIVATE_KEY_PATH"))
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


# Objects the pipeline reads or writes: breaking drift on any of them blocks the batch jobs.
DEFAULT_CONTRACT_OBJECTS = ("WALDINGER.LLM.PROMPTS", "WALDINGER.LLM.BATCH_OUTPUTS")


def contract_objects() -> tuple[str, ...]:
    raw = os.environ.get("WALDINGER_CONTRACT_OBJECTS", "")
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    return names or DEFAULT_CONTRACT_OBJECTS


def baseline_path() -> Path:
    """The reviewable baseline file: `schema_baseline/<environment>.json` in the repo unless overridden."""
    configured = os.environ.get("WALDINGER_BASELINE")
    if configured:
        return Path(configured).expanduser().resolve()
    return PROJECT_ROOT / "schema_baseline" / f"{current_environment().value}.json"


def schema_history_dir() -> Path:
    """Where every run's snapshot and drift report are kept (WALDINGER_SCHEMA_HISTORY_DIR, e.g. a mounted
    Azure Files share in prod; the data directory locally)."""
    configured = os.environ.get("WALDINGER_SCHEMA_HISTORY_DIR")
    return Path(configured).expanduser().resolve() if configured else data_dir() / "schema_history"


def alert_webhook_variable() -> str | None:
    """The name of the variable holding the Teams/Slack incoming-webhook URL, if it is set (the URL is a
    secret: it is passed to Dagster as an EnvVar, never read into the definitions)."""
    return "WALDINGER_ALERT_WEBHOOK_URL" if os.environ.get("WALDINGER_ALERT_WEBHOOK_URL") else None


def serving_api_key_variable() -> str | None:
    """The name of the variable holding the real-time endpoint's bearer key (vLLM's VLLM_API_KEY in the serving
    container; the infra_pulumi stack sets both from one Key Vault secret), if it is set. Like the webhook URL it
    is a secret: Dagster reads it through an EnvVar."""
    return SERVING_API_KEY_VARIABLE if os.environ.get(SERVING_API_KEY_VARIABLE) else None


def serving_api_key() -> str | None:
    """The bearer key itself, for the two places that must hold the value rather than an EnvVar: the local
    endpoint's server process (which gets it through its environment, never its command line, since `ps` shows
    command lines) and `waldinger serve start`, which hands it to that process."""
    return os.environ.get(SERVING_API_KEY_VARIABLE) or None


def dagster_ui_url() -> str:
    """Base URL of the Dagster UI, for links to runs in alerts."""
    return os.environ.get("WALDINGER_DAGSTER_URL", "http://127.0.0.1:3000").rstrip("/")


def batch_start_date() -> str:
    """First day of the daily batch partitions (YYYY-MM-DD)."""
    raw = os.environ.get("WALDINGER_BATCH_START_DATE", "2026-11-01").strip()
    try:
        import datetime as dt

        dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"WALDINGER_BATCH_START_DATE={raw!r} is not a date; use YYYY-MM-DD.") from None
    return raw


def max_prompt_chars() -> int:
    """Prompts longer than this are flagged in the batch input (they cannot fit the model's context window)."""
    return _positive_int("WALDINGER_MAX_PROMPT_CHARS", 16000)


def storage_dir() -> Path:
    """Where the batch job's request and result files are kept, per run (WALDINGER_STORAGE_DIR, e.g. an Azure
    Files share mounted into the Container Apps in prod; the data directory locally)."""
    configured = os.environ.get("WALDINGER_STORAGE_DIR")
    return Path(configured).expanduser().resolve() if configured else data_dir() / "storage"


# Prod asset values (Dagster's IO manager): an ADLS Gen2 container that daemon runs and CI runs share.
ASSET_VALUE_PROD_VARIABLES = ("WALDINGER_IO_ADLS2_ACCOUNT",)


@dataclass(frozen=True)
class AssetValueStorage:
    """Where Dagster's IO manager keeps asset values: a directory locally, an ADLS Gen2 container in prod."""

    directory: Path | None = None
    adls2_account: str | None = None
    adls2_container: str | None = None
    adls2_prefix: str = "dagster"


def asset_value_storage() -> AssetValueStorage:
    """Locally WALDINGER_IO_DIR (default `<data dir>/io`): point two data directories at one IO directory and a
    value one materialized is the value the other loads. Prod: WALDINGER_IO_ADLS2_ACCOUNT (storage account
    name) and WALDINGER_IO_ADLS2_CONTAINER (default dagster-io), provisioned by infra_pulumi."""
    if current_environment() is Environment.PROD:
        account = os.environ.get("WALDINGER_IO_ADLS2_ACCOUNT", "").strip()
        if not account:
            raise SettingsError(
                "WALDINGER_IO_ADLS2_ACCOUNT is not set: name the storage account of the asset values (the stack "
                "output of infra_pulumi), or run with WALDINGER_ENV=local."
            )
        container = os.environ.get("WALDINGER_IO_ADLS2_CONTAINER", "").strip() or "dagster-io"
        return AssetValueStorage(adls2_account=account, adls2_container=container)
    configured = os.environ.get("WALDINGER_IO_DIR")
    return AssetValueStorage(directory=Path(configured).expanduser().resolve() if configured else data_dir() / "io")


@dataclass(frozen=True)
class ModelSourceSetting:
    """Where the model comes from: the tiny model built offline (local), or, in prod, exactly one of a local
    path, a Hugging Face id, or an Azure ML registry model URI."""

    kind: str  # tiny, path, huggingface, azureml
    value: str | None = None


MODEL_SOURCE_VARIABLES = {
    "WALDINGER_MODEL_PATH": "path",
    "WALDINGER_MODEL_HF_ID": "huggingface",
    "WALDINGER_MODEL_AZUREML_URI": "azureml",
}


def model_source() -> ModelSourceSetting:
    given = {name: os.environ[name] for name in MODEL_SOURCE_VARIABLES if os.environ.get(name, "").strip()}
    if len(given) > 1:
        raise SettingsError(f"Set only one model source; found {', '.join(sorted(given))}.")
    if given:
        ((name, value),) = given.items()
        return ModelSourceSetting(MODEL_SOURCE_VARIABLES[name], value.strip())
    if current_environment() is Environment.PROD:
        raise SettingsError(
            "WALDINGER_ENV=prod needs a model source: set WALDINGER_MODEL_PATH (a local folder), "
            "WALDINGER_MODEL_HF_ID (e.g. mistralai/Mistral-7B-Instruct-v0.3) or WALDINGER_MODEL_AZUREML_URI "
            "(azureml://registries/<registry>/models/<name>/versions/<version>)."
        )
    return ModelSourceSetting("tiny")


def model_name() -> str:
    default = "waldinger-tiny-mistral" if current_environment() is Environment.LOCAL else "mistral-7b-instruct"
    return os.environ.get("WALDINGER_MODEL_NAME", default).strip() or default


AZURE_ML_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE")


def require_azure_ml_settings() -> None:
    missing = [name for name in AZURE_ML_VARIABLES if not os.environ.get(name, "").strip()]
    if missing:
        raise SettingsError(
            f"WALDINGER_ENV=prod registers models in Azure ML and needs: {', '.join(missing)}. Export them "
            "(the infra_pulumi stack outputs name them), or run with WALDINGER_ENV=local."
        )


def code_version() -> str:
    """The git commit the code runs from (WALDINGER_CODE_VERSION or GITHUB_SHA when set, e.g. in CI images)."""
    for name in ("WALDINGER_CODE_VERSION", "GITHUB_SHA"):
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    import subprocess

    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# Where the two deployments run in prod (names from the infra_pulumi stack outputs).
SERVING_PROD_VARIABLES = ("WALDINGER_CONTAINER_APP", "WALDINGER_PIPES_STORAGE_ACCOUNT_URL")


def require_serving_prod_settings() -> None:
    missing = [name for name in AZURE_ML_VARIABLES + SERVING_PROD_VARIABLES if not os.environ.get(name, "").strip()]
    if missing:
        raise SettingsError(
            f"WALDINGER_ENV=prod serves the model from Azure and needs: {', '.join(missing)}. Export them (the "
            "infra_pulumi stack outputs name them), or run with WALDINGER_ENV=local."
        )


def _port_setting(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name}={raw!r} is not a TCP port; set it to 1-65535 or unset it.")
    return int(raw)


def requested_serve_port() -> int | None:
    """A fixed port for the local real-time endpoint (WALDINGER_SERVE_PORT); otherwise a free one is picked."""
    return _port_setting("WALDINGER_SERVE_PORT")


ENGINES = ("auto", "transformers", "vllm")


def inference_engine() -> str:
    """WALDINGER_ENGINE: auto (vLLM where installed with a GPU, else transformers), transformers or vllm."""
    raw = os.environ.get("WALDINGER_ENGINE", "auto").strip().lower() or "auto"
    if raw not in ENGINES:
        raise SettingsError(f"WALDINGER_ENGINE={raw!r} is not an engine; use one of {', '.join(ENGINES)}.")
    return raw


@dataclass(frozen=True)
class StepRetrySettings:
    max_retries: int
    delay_s: float


def step_retries() -> StepRetrySettings:
    """Retries of the steps that talk to the warehouse (WALDINGER_STEP_RETRIES, default 3) and the delay before
    the first one (WALDINGER_STEP_RETRY_DELAY_S, default 10; then 3 and 7 times that, each ± one delay of jitter)."""
    retries = os.environ.get("WALDINGER_STEP_RETRIES", "3").strip()
    if not retries.isdigit():
        raise SettingsError(f"WALDINGER_STEP_RETRIES={retries!r} is not a whole number (0 turns retries off).")
    delay = os.environ.get("WALDINGER_STEP_RETRY_DELAY_S", "10").strip()
    try:
        delay_s = float(delay)
    except ValueError:
        delay_s = -1.0
    if not 0 <= delay_s <= 3600:
        raise SettingsError(f"WALDINGER_STEP_RETRY_DELAY_S={delay!r} is not a number of seconds from 0 to 3600.")
    return StepRetrySettings(int(retries), delay_s)


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default)).strip()
    if not raw.isdigit() or int(raw) <= 0:
        raise SettingsError(f"{name}={raw!r} is not a positive integer.")
    return int(raw)


def batch_max_tokens() -> int:
    """Completion tokens per batch prompt (WALDINGER_BATCH_MAX_TOKENS)."""
    return _positive_int("WALDINGER_BATCH_MAX_TOKENS", 32)


def batch_size() -> int:
    """Prompts per engine call in the batch job (WALDINGER_BATCH_SIZE)."""
    return _positive_int("WALDINGER_BATCH_SIZE", 32)


@dataclass(frozen=True)
class AzureServingSettings:
    """Names and values of the prod serving settings that are not secrets."""

    container_app: str
    container_name: str
    compute: str
    environment: str
    pipes_storage_account_url: str
    pipes_container: str


def azure_serving_settings() -> AzureServingSettings:
    require_serving_prod_settings()
    return AzureServingSettings(
        container_app=os.environ["WALDINGER_CONTAINER_APP"].strip(),
        container_name=os.environ.get("WALDINGER_CONTAINER_NAME", "vllm").strip() or "vllm",
        compute=os.environ.get("WALDINGER_AML_COMPUTE", "waldinger-batch").strip() or "waldinger-batch",
        environment=os.environ.get("WALDINGER_AML_ENVIRONMENT", "waldinger-serving@latest").strip()
        or "waldinger-serving@latest",
        pipes_storage_account_url=os.environ["WALDINGER_PIPES_STORAGE_ACCOUNT_URL"].strip(),
        pipes_container=os.environ.get("WALDINGER_PIPES_CONTAINER", "dagster-pipes").strip() or "dagster-pipes",
    )


TRAINING_COMPUTE_VARIABLE = "WALDINGER_AZUREML_TRAINING_COMPUTE"
DEFAULT_TRAINING_COMPUTE = "waldinger-training"  # the name infra_pulumi gives the GPU training cluster


def azure_training_compute() -> str:
    """The Azure ML GPU cluster the prod fine-tuning command job runs on (WALDINGER_AZUREML_TRAINING_COMPUTE, the
    stack output `trainingCompute`)."""
    return os.environ.get(TRAINING_COMPUTE_VARIABLE, "").strip() or DEFAULT_TRAINING_COMPUTE


def sensor_interval_seconds() -> int:
    """Seconds between ticks of the project's sensors (WALDINGER_SENSOR_INTERVAL_S; each tick is cheap: one
    metadata query per watched database, one query on the input table, one registry read)."""
    return _positive_int("WALDINGER_SENSOR_INTERVAL_S", 60)


def daily_batch_cron() -> str:
    """When the daily batch runs the day that just ended (WALDINGER_DAILY_BATCH_CRON, UTC; 00:30 by default)."""
    raw = os.environ.get("WALDINGER_DAILY_BATCH_CRON", "30 0 * * *").strip()
    from resources.dagster_internals import is_valid_cron_string  # imports Dagster; the CLI reads settings without it

    if not is_valid_cron_string(raw):
        raise SettingsError(f"WALDINGER_DAILY_BATCH_CRON={raw!r} is not a cron expression; e.g. '30 0 * * *'.")
    return raw


@dataclass(frozen=True)
class PromotionGateSettings:
    """The evaluation gate's defaults: the least exact match a version needs on the eval split, and how much worse
    than the production version's it may be."""

    min_exact_match: float
    max_regression: float


def promotion_gate_settings() -> PromotionGateSettings:
    """WALDINGER_PROMOTION_MIN_EXACT_MATCH (default 0.9) and WALDINGER_PROMOTION_MAX_REGRESSION (default 0.01), both
    fractions from 0 to 1; a promotion's config or `waldinger model promote` options may set others for one run."""
    return PromotionGateSettings(
        min_exact_match=_fraction("WALDINGER_PROMOTION_MIN_EXACT_MATCH", 0.9),
        max_regression=_fraction("WALDINGER_PROMOTION_MAX_REGRESSION", 0.01),
    )


def _fraction(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise SettingsError(f"{name}={raw!r} is not a fraction from 0 to 1 (e.g. {default}); set one or unset it.")
    return value
