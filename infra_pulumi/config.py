"""The stack's settings, read from Pulumi config once (`read_stack_config`) and checked before any resource is
declared: a missing or invalid setting fails `pulumi preview` with a message that names the key and the command
that sets it.

The checks are pure (`settings_from_config` takes the raw strings `pulumi config` stores), so they are tested on
plain data. Secrets are read as Pulumi secrets and must have been set with `pulumi config set --secret`; a
secret found as plain config is refused, because plain config is stored in the stack file in clear text.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "waldinger"

# Serving GPU workload profiles and the container size each fits (Container Apps sizes per profile type).
# Consumption-GPU profiles are serverless (billed per second while a replica runs); the others are dedicated
# nodes, which the stack sizes with a minimum of 0 so they also cost nothing while the app is scaled to zero.
GPU_PROFILES: dict[str, tuple[float, str]] = {
    "Consumption-GPU-NC24-A100": (24.0, "220Gi"),
    "Consumption-GPU-NC8as-T4": (8.0, "56Gi"),
    "NC24-A100": (24.0, "220Gi"),
    "NC48-A100": (48.0, "440Gi"),
    "NC96-A100": (96.0, "880Gi"),
}
ENVIRONMENTS = ("dev", "test", "staging", "prod")
VM_PRIORITIES = ("Dedicated", "LowPriority")
MAX_IDLE_MINUTES = 30  # the policy pack's ceiling on an idle cluster's scale-down time
_DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SNOWFLAKE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$|^\"[^\"]+\"$")
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


class InfraConfigError(ValueError):
    """A stack setting is missing or invalid; the message names the key and how to set it."""


@dataclass(frozen=True)
class StackSettings:
    """Every non-secret setting of the stack, checked."""

    location: str
    environment: str
    team: str
    project: str
    batch_vm_size: str
    batch_vm_priority: str
    batch_max_nodes: int
    batch_idle_minutes: int
    training_vm_size: str
    training_max_nodes: int
    training_idle_minutes: int
    serving_gpu_profile: str
    serving_max_replicas: int
    serving_concurrent_requests: int
    serving_cooldown_seconds: int
    serving_max_model_len: int | None
    serving_image_tag: str
    dagster_image_tag: str
    dagster_allowed_ips: tuple[str, ...]
    postgres_admin_login: str
    postgres_sku: str
    postgres_storage_gb: int
    postgres_allowed_ips: tuple[str, ...]
    snowflake_account: str
    snowflake_user: str
    snowflake_role: str
    snowflake_warehouse: str
    snowflake_databases: tuple[str, ...]
    model_name: str
    model_azureml_uri: str | None
    model_hf_id: str | None
    ci_principal_id: str | None
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def tags(self) -> dict[str, str]:
        """The cost-attribution tags every taggable resource carries (the policy pack requires the three)."""
        return {**self.extra_tags, "team": self.team, "project": self.project, "environment": self.environment}

    @property
    def serving_resources(self) -> tuple[float, str]:
        """CPU cores and memory of the serving container: the whole GPU profile's share."""
        return GPU_PROFILES[self.serving_gpu_profile]

    @property
    def is_serverless_gpu(self) -> bool:
        return self.serving_gpu_profile.startswith("Consumption-")


@dataclass(frozen=True)
class StackSecrets:
    """Pulumi secrets (Outputs marked secret): they go to Key Vault and nowhere else."""

    snowflake_private_key: Any
    postgres_admin_password: Any
    alert_webhook_url: Any
    serving_api_key: Any


REQUIRED_KEYS = (
    "location",
    "environment",
    "team",
    "batchMaxNodes",
    "servingImageTag",
    "dagsterImageTag",
    "dagsterAllowedIps",
    "snowflakeAccount",
    "snowflakeUser",
    "snowflakeRole",
    "snowflakeWarehouse",
    "snowflakeDatabases",
)
OPTIONAL_KEYS = (
    "project",
    "batchVmSize",
    "batchVmPriority",
    "batchIdleScaleDownMinutes",
    "trainingVmSize",
    "trainingMaxNodes",
    "trainingIdleScaleDownMinutes",
    "servingGpuProfile",
    "servingMaxReplicas",
    "servingConcurrentRequests",
    "servingCooldownSeconds",
    "servingMaxModelLen",
    "postgresAdminLogin",
    "postgresSku",
    "postgresStorageGb",
    "postgresAllowedIps",
    "modelName",
    "modelAzuremlUri",
    "modelHfId",
    "ciPrincipalId",
    "extraTags",
)


def _set_hint(key: str, example: str, secret: bool = False) -> str:
    flag = " --secret" if secret else ""
    return f"`pulumi config set{flag} {NAMESPACE}:{key} {example}`"


def _fail(key: str, problem: str, example: str, secret: bool = False) -> InfraConfigError:
    return InfraConfigError(f"{NAMESPACE}:{key} {problem}; set it with {_set_hint(key, example, secret)}.")


def _required(values: Mapping[str, str | None], key: str, example: str) -> str:
    raw = (values.get(key) or "").strip()
    if not raw:
        raise _fail(key, "is not set", example)
    return raw


def _integer(values: Mapping[str, str | None], key: str, default: int | None, low: int, high: int) -> int:
    raw = (values.get(key) or "").strip()
    if not raw:
        if default is None:
            raise _fail(key, "is not set", str(low))
        return default
    if not re.fullmatch(r"-?\d+", raw) or not low <= int(raw) <= high:
        raise _fail(key, f"is {raw!r}, not a whole number from {low} to {high}", str(low))
    return int(raw)


def _choice(values: Mapping[str, str | None], key: str, default: str, choices: tuple[str, ...] | list[str]) -> str:
    raw = (values.get(key) or "").strip() or default
    if raw not in choices:
        raise _fail(key, f"is {raw!r}, not one of {', '.join(choices)}", default)
    return raw


def _string_list(values: Mapping[str, str | None], key: str, example: str, required: bool) -> tuple[str, ...]:
    """A list setting: a JSON array (`pulumi config set --path` or YAML list) or a comma-separated string."""
    raw = (values.get(key) or "").strip()
    if not raw:
        if required:
            raise _fail(key, "is not set", example)
        return ()
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError:
            raise _fail(key, "is not a valid JSON list", example) from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise _fail(key, "must be a list of strings", example)
    else:
        items = raw.split(",")
    cleaned = tuple(item.strip() for item in items if item.strip())
    if required and not cleaned:
        raise _fail(key, "is empty", example)
    return cleaned


def _ip_ranges(values: Mapping[str, str | None], key: str, required: bool) -> tuple[str, ...]:
    example = "'[\"203.0.113.0/24\"]'"
    ranges = []
    for item in _string_list(values, key, example, required):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise _fail(key, f"holds {item!r}, which is not an IP address or CIDR range", example) from None
        if network.prefixlen == 0:
            raise _fail(
                key,
                f"holds {item!r}, which opens it to the whole internet (the Dagster webserver and Postgres have "
                "no login of their own in front of them); list your VPN or office ranges",
                example,
            )
        ranges.append(str(network))
    return tuple(ranges)


def _cost_attribution(values: Mapping[str, str | None]) -> tuple[str, str, str]:
    """environment, team and project: the cost tags every resource carries."""
    if not (values.get("environment") or "").strip():
        raise _fail("environment", "is not set", "prod")
    environment = _choice(values, "environment", "prod", ENVIRONMENTS)
    team = _required(values, "team", "data-platform")
    project = (values.get("project") or "").strip() or "waldinger"
    for key, value in (("team", team), ("project", project)):
        if not _SLUG.match(value):
            raise _fail(key, f"is {value!r}; use lowercase letters, digits and dashes (it is a cost tag)", "waldinger")
    return environment, team, project


def _image_tags(values: Mapping[str, str | None]) -> tuple[str, str]:
    """The serving and the Dagster image tags."""
    serving_image_tag = _required(values, "servingImageTag", "<git sha of the serving image>")
    dagster_image_tag = _required(values, "dagsterImageTag", "<git sha of the Dagster image>")
    for key, tag in (("servingImageTag", serving_image_tag), ("dagsterImageTag", dagster_image_tag)):
        if not _DOCKER_TAG.match(tag):
            raise _fail(key, f"is {tag!r}, not a Docker image tag", "<git sha>")
    return serving_image_tag, dagster_image_tag


def _snowflake_databases(values: Mapping[str, str | None]) -> tuple[str, ...]:
    databases = _string_list(values, "snowflakeDatabases", "RAW,ANALYTICS,WALDINGER", required=True)
    for database in databases:
        if not _SNOWFLAKE_IDENTIFIER.match(database):
            raise _fail("snowflakeDatabases", f"holds {database!r}, not a Snowflake identifier", "RAW,ANALYTICS")
    return databases


def _model_source(values: Mapping[str, str | None]) -> tuple[str | None, str | None]:
    """The Azure ML model URI or the Hugging Face id: exactly one is set."""
    model_azureml_uri = (values.get("modelAzuremlUri") or "").strip() or None
    model_hf_id = (values.get("modelHfId") or "").strip() or None
    if bool(model_azureml_uri) == bool(model_hf_id):
        raise InfraConfigError(
            f"Set exactly one model source: {_set_hint('modelAzuremlUri', 'azureml:mistral-7b-instruct:1')} or "
            f"{_set_hint('modelHfId', 'mistralai/Mistral-7B-Instruct-v0.3')}"
            + (" (both are set)." if model_azureml_uri else ".")
        )
    if model_azureml_uri and not model_azureml_uri.startswith(("azureml:", "azureml://registries/")):
        raise _fail("modelAzuremlUri", f"is {model_azureml_uri!r}, not an Azure ML model URI", "azureml:<name>:<ver>")
    return model_azureml_uri, model_hf_id


def _ci_principal_id(values: Mapping[str, str | None], environment: str) -> str | None:
    """The object id of the service principal GitHub Actions signs in as (materialize.yml's azure/login): it
    writes asset values to the IO manager's storage. Required for prod, the stack that workflow materializes in."""
    example = '"$(az ad sp show --id <the client id it logs in with> --query id -o tsv)"'
    raw = (values.get("ciPrincipalId") or "").strip()
    if not raw:
        if environment == "prod":
            raise _fail(
                "ciPrincipalId",
                "is not set, and a prod stack needs it: the materialize workflow's Azure login writes asset values "
                "to the IO manager's storage (the object id of its service principal, not the client id)",
                example,
            )
        return None
    if not _GUID.match(raw):
        raise _fail("ciPrincipalId", f"is {raw!r}, not an object id (a GUID)", example)
    return raw


def _extra_tags(values: Mapping[str, str | None]) -> dict[str, str]:
    extra_tags_raw = (values.get("extraTags") or "").strip()
    extra_tags: dict[str, str] = {}
    if extra_tags_raw:
        try:
            extra_tags = json.loads(extra_tags_raw)
        except json.JSONDecodeError:
            extra_tags = None  # type: ignore[assignment]
        if not isinstance(extra_tags, dict) or not all(isinstance(v, str) for v in extra_tags.values()):
            raise _fail("extraTags", "must be a JSON object of strings", '\'{"costCenter": "42"}\'')
    return extra_tags


def settings_from_config(values: Mapping[str, str | None]) -> StackSettings:
    """Checks the raw config values (key without namespace -> string as `pulumi config` stores it)."""
    location = _required(values, "location", "westeurope")
    environment, team, project = _cost_attribution(values)
    serving_image_tag, dagster_image_tag = _image_tags(values)
    databases = _snowflake_databases(values)
    model_azureml_uri, model_hf_id = _model_source(values)
    ci_principal_id = _ci_principal_id(values, environment)
    extra_tags = _extra_tags(values)

    return StackSettings(
        location=location,
        environment=environment,
        team=team,
        project=project,
        batch_vm_size=(values.get("batchVmSize") or "").strip() or "Standard_NC24ads_A100_v4",
        batch_vm_priority=_choice(values, "batchVmPriority", "Dedicated", VM_PRIORITIES),
        batch_max_nodes=_integer(values, "batchMaxNodes", None, 1, 100),
        batch_idle_minutes=_integer(values, "batchIdleScaleDownMinutes", 10, 2, MAX_IDLE_MINUTES),
        # One node by default: the fine-tuning job runs on one node, so a second would only add to the bill.
        training_vm_size=(values.get("trainingVmSize") or "").strip() or "Standard_NC24ads_A100_v4",
        training_max_nodes=_integer(values, "trainingMaxNodes", 1, 1, 100),
        training_idle_minutes=_integer(values, "trainingIdleScaleDownMinutes", 10, 2, MAX_IDLE_MINUTES),
        serving_gpu_profile=_choice(values, "servingGpuProfile", "Consumption-GPU-NC24-A100", list(GPU_PROFILES)),
        serving_max_replicas=_integer(values, "servingMaxReplicas", 1, 1, 10),
        serving_concurrent_requests=_integer(values, "servingConcurrentRequests", 16, 1, 1000),
        serving_cooldown_seconds=_integer(values, "servingCooldownSeconds", 1800, 60, 86400),
        serving_max_model_len=(
            _integer(values, "servingMaxModelLen", 0, 256, 131072) if values.get("servingMaxModelLen") else None
        ),
        serving_image_tag=serving_image_tag,
        dagster_image_tag=dagster_image_tag,
        dagster_allowed_ips=_ip_ranges(values, "dagsterAllowedIps", required=True),
        postgres_admin_login=(values.get("postgresAdminLogin") or "").strip() or "dagster",
        postgres_sku=(values.get("postgresSku") or "").strip() or "Standard_B1ms",
        postgres_storage_gb=_integer(values, "postgresStorageGb", 32, 32, 16384),
        postgres_allowed_ips=_ip_ranges(values, "postgresAllowedIps", required=False),
        snowflake_account=_required(values, "snowflakeAccount", "myorg-myaccount"),
        snowflake_user=_required(values, "snowflakeUser", "WALDINGER_SVC"),
        snowflake_role=_required(values, "snowflakeRole", "WALDINGER"),
        snowflake_warehouse=_required(values, "snowflakeWarehouse", "WALDINGER_WH"),
        snowflake_databases=databases,
        model_name=(values.get("modelName") or "").strip() or "mistral-7b-instruct",
        model_azureml_uri=model_azureml_uri,
        model_hf_id=model_hf_id,
        ci_principal_id=ci_principal_id,
        extra_tags=extra_tags,
    )


def read_stack_config() -> tuple[StackSettings, StackSecrets]:
    """Reads the `waldinger:` stack config once: the checked settings and the secrets as Pulumi secrets."""
    import pulumi
    from pulumi.runtime.config import is_config_secret

    config = pulumi.Config(NAMESPACE)
    settings = settings_from_config({key: config.get(key) for key in REQUIRED_KEYS + OPTIONAL_KEYS})

    def secret(key: str, example: str, required: bool):
        full_key = f"{NAMESPACE}:{key}"
        if config.get(key) is None:
            if required:
                raise _fail(key, "is not set", example, secret=True)
            return None
        if not is_config_secret(full_key):
            raise InfraConfigError(
                f"{full_key} is stored as plain config, i.e. in clear text in the stack file; remove it "
                f"(`pulumi config rm {full_key}`) and set it with {_set_hint(key, example, secret=True)}."
            )
        return config.require_secret(key)

    secrets = StackSecrets(
        snowflake_private_key=secret("snowflakePrivateKey", "-- < rsa_key.p8", required=True),
        postgres_admin_password=secret("postgresAdminPassword", "<a long random password>", required=True),
        # Required in Azure: every run references it in Key Vault, and a drift alert must reach someone.
        alert_webhook_url=secret("alertWebhookUrl", "<Teams or Slack incoming-webhook URL>", required=True),
        # The endpoint is on the internet and runs on GPUs: without a key anyone could use it (and wake it).
        serving_api_key=secret("servingApiKey", '"$(openssl rand -hex 32)"', required=True),
    )
    return settings, secrets
