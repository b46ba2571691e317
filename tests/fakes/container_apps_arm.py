"""What the fakes of Azure Resource Manager's Microsoft.App endpoints (tests/fakes/container_apps.py, the apps and
their revisions; tests/fakes/container_apps_jobs.py, the Jobs) share: the API version and region, ARM error
answers, the service's rule for secrets, and the way it answers a resource without its secrets' values."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.azure_ml import SUB

API_VERSION = "2026-07-01"
LOCATION = "westeurope"
ARM = r"^management\.azure\.com"
NOW = "2025-01-01T00:00:00Z"
# (status, headers, body): what a route of FakeTransport answers.
Answer = tuple[int, dict[str, str], Any]


def arm_error(status: int, code: str, message: str) -> Answer:
    return status, {"x-ms-error-code": code}, {"error": {"code": code, "message": message}}


def invalid_secrets(secrets: list[dict[str, Any]] | None) -> Answer | None:
    """The service's answer to secrets that carry neither a value nor a Key Vault reference; None if all do."""
    for secret in secrets or []:
        if not secret.get("value") and not (secret.get("keyVaultUrl") and secret.get("identity")):
            return arm_error(
                400,
                "ContainerAppSecretInvalid",
                f"Invalid Request: Container app secret(s) with name(s) '{secret.get('name')}' are invalid: "
                "value or keyVaultUrl and identity should be provided.",
            )
    return None


def without_secret_values(resource: dict) -> dict:
    """An app or Job as the service answers it: its secrets' names only."""
    shown = copy.deepcopy(resource)
    configuration = shown["properties"].get("configuration") or {}
    configuration["secrets"] = [
        {k: v for k, v in secret.items() if k != "value"} for secret in configuration.get("secrets") or []
    ]
    return shown


def operation_url(kind: str, operation: str, azure_async_operation: bool) -> str:
    """Where a long-running operation is polled: `kind` is containerappOperationResults (an app's Location) or
    containerappOperationStatuses (a Job's Azure-AsyncOperation)."""
    return (
        f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.App/locations/{LOCATION}"
        f"/{kind}/{operation}?api-version={API_VERSION}&azureAsyncOperation={str(azure_async_operation).lower()}"
    )
