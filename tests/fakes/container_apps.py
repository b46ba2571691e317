"""A fake of Azure Resource Manager's Container Apps endpoints for azure-mgmt-appcontainers (the one boundary
that cannot run here): it holds apps and their revisions in memory, answers the calls a deployment makes, and
records every request (FakeTransport from tests/fakes/azure_ml.py) so tests can assert on them. What it shares
with the Jobs fake (errors, the secret rule) is in tests/fakes/container_apps_arm.py.

What it answers, the way the service does:
- GET containerApps/{app}: the app, with its secrets' names only (the service never returns secret values);
  404 ResourceNotFound for an unknown app.
- PATCH containerApps/{app}: a JSON merge patch (`fail_patch` makes the next one fail as told). A body whose
  secrets carry neither a value nor a Key Vault reference is rejected (ContainerAppSecretInvalid), as is a
  revision suffix that breaks the naming rules or is already used. A patch of the template starts a new revision
  `<app>--<suffix>`. The answer is 202 with a Location header; polling that URL answers 202
  `polls_before_done` times, then 200.
- GET containerApps/{app}/revisions: the app's revisions.
- The Container Apps Jobs a run launcher starts: tests/fakes/container_apps_jobs.py.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

from tests.fakes.azure_ml import RG, SUB, FakeTransport
from tests.fakes.container_apps_arm import (
    ARM,
    NOW,
    Answer,
    arm_error,
    invalid_secrets,
    operation_url,
    without_secret_values,
)
from tests.fakes.container_apps_jobs import ContainerAppsJobs, install_job_routes

ENV_DOMAIN = "happyhill-1a2b3c4d.westeurope.azurecontainerapps.io"
APP_ROUTE = (
    ARM + rf"/subscriptions/{SUB}/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.App/containerApps/(?P<app>[^/]+)"
)
OPERATION_ROUTE = (
    ARM + rf"/subscriptions/{SUB}/providers/Microsoft\.App/locations/[^/]+/containerappOperationResults/(?P<op>[^/]+)$"
)
REVISION_SUFFIX = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$")
MAX_REVISION_NAME = 54


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge key by key, null deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeContainerApps(ContainerAppsJobs, FakeTransport):
    """A FakeTransport that is also the Container Apps service: `apps[(rg, name)]` is each app as the service
    stores it (secret values included), `revisions[(rg, name)]` its revisions, oldest first; and its Jobs
    (ContainerAppsJobs: `jobs`, `job_executions`, `job_operations`)."""

    def __init__(self, polls_before_done: int = 1) -> None:
        FakeTransport.__init__(self)
        ContainerAppsJobs.__init__(self)
        self.apps: dict[tuple[str, str], dict[str, Any]] = {}
        self.revisions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.polls_before_done = polls_before_done
        self.fail_patch: tuple[int, str, str] | None = None  # (status, code, message) to answer the next PATCH
        # The service has been seen to accept a revision name it then does not create (Azure/aca-review-apps#40).
        self.ignore_revision_suffix = False
        self._operation_ids = itertools.count(1)
        install_routes(self)
        install_job_routes(self)

    def new_operation_id(self) -> str:
        """One sequence for the apps' and the Jobs' operations, as one service hands them out."""
        return f"{next(self._operation_ids):08d}-0000-0000-0000-000000000000"

    # -- arranging state -------------------------------------------------------------
    def add_app(
        self,
        name: str,
        containers: list[dict[str, Any]],
        *,
        resource_group: str = RG,
        secrets: list[dict[str, Any]] | None = None,
        revisions_mode: str = "Single",
        traffic: list[dict[str, Any]] | None = None,
        scale: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        app_id = f"/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.App/containerApps/{name}"
        environment_id = f"/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.App/managedEnvironments/waldinger-env"  # noqa: E501
        first_revision = f"{name}--initial"
        app = {
            "id": app_id,
            "name": name,
            "type": "Microsoft.App/containerApps",
            "location": "West Europe",
            "identity": {
                "type": "SystemAssigned",
                "principalId": "33333333-3333-3333-3333-333333333333",
                "tenantId": "44444444-4444-4444-4444-444444444444",
            },
            "systemData": {"createdAt": NOW, "createdBy": "pulumi@example.com", "createdByType": "User"},
            "properties": {
                "provisioningState": "Succeeded",
                "runningStatus": "Running",
                "managedEnvironmentId": environment_id,
                "environmentId": environment_id,
                "workloadProfileName": "gpu-a100",
                "latestRevisionName": first_revision,
                "latestReadyRevisionName": first_revision,
                "latestRevisionFqdn": f"{first_revision}.{ENV_DOMAIN}",
                "customDomainVerificationId": "0123456789ABCDEF",
                "outboundIpAddresses": ["20.0.0.1"],
                "configuration": {
                    "secrets": copy.deepcopy(secrets or []),
                    "activeRevisionsMode": revisions_mode,
                    "maxInactiveRevisions": 100,
                    "ingress": {
                        "fqdn": f"{name}.{ENV_DOMAIN}",
                        "external": True,
                        "targetPort": 8000,
                        "transport": "Auto",
                        "allowInsecure": False,
                        "traffic": traffic if traffic is not None else [{"weight": 100, "latestRevision": True}],
                    },
                    "registries": [{"server": "waldingeracr.azurecr.io", "identity": "system"}],
                },
                "template": {
                    "revisionSuffix": "initial",
                    "containers": copy.deepcopy(containers),
                    "scale": scale
                    if scale is not None
                    else {
                        "minReplicas": 0,
                        "maxReplicas": 1,
                        "cooldownPeriod": 1800,
                        "pollingInterval": 30,
                        "rules": [{"name": "http", "http": {"metadata": {"concurrentRequests": "8"}}}],
                    },
                    "volumes": [{"name": "models", "storageType": "EmptyDir"}],
                },
            },
        }
        self.apps[(resource_group, name)] = app
        self.revisions[(resource_group, name)] = [self._revision(app, first_revision)]
        return app

    def app(self, name: str, resource_group: str = RG) -> dict[str, Any]:
        return self.apps[(resource_group, name)]

    @staticmethod
    def _revision(app: dict[str, Any], name: str) -> dict[str, Any]:
        return {
            "id": f"{app['id']}/revisions/{name}",
            "name": name,
            "type": "Microsoft.App/containerApps/revisions",
            "properties": {
                "createdTime": NOW,
                "fqdn": f"{name}.{ENV_DOMAIN}",
                "template": copy.deepcopy(app["properties"]["template"]),
                "active": True,
                "replicas": 0,
                "trafficWeight": 100,
                "healthState": "Healthy",
                "provisioningState": "Provisioned",
                "runningState": "ScaledToZero",
            },
        }

    # -- the service's behaviour -------------------------------------------------------
    def patch_app(self, key: tuple[str, str], body: dict[str, Any]) -> Answer:
        if self.fail_patch:
            status, code, message = self.fail_patch
            self.fail_patch = None
            return arm_error(status, code, message)
        app = self.apps[key]
        invalid = invalid_secrets(((body.get("properties") or {}).get("configuration") or {}).get("secrets"))
        if invalid:
            return invalid
        template_patch = (body.get("properties") or {}).get("template")
        revision = None
        if template_patch is not None:
            suffix = template_patch.get("revisionSuffix")
            if not suffix or self.ignore_revision_suffix:
                suffix = f"r{len(self.revisions[key]) + 1:07d}"
            revision = f"{key[1]}--{suffix}"
            if not REVISION_SUFFIX.match(suffix) or len(revision) > MAX_REVISION_NAME:
                return arm_error(
                    400,
                    "ContainerAppInvalidRevisionName",
                    f"Revision name has an invalid value '{revision}'. A revision name must consist of lower case "
                    "alphanumeric characters or '-', start with an alphabetic character, and end with an "
                    "alphanumeric character. The length of the revision name must not be more than a combined "
                    f"{MAX_REVISION_NAME} characters with the container app name.",
                )
            if any(r["name"] == revision for r in self.revisions[key]):
                return arm_error(400, "ContainerAppRevisionAlreadyExists", f"Revision '{revision}' already exists.")

        read_only = {"provisioningState", "latestRevisionName", "latestReadyRevisionName", "latestRevisionFqdn"}
        patched = merge_patch(app, body)
        for name in read_only:
            patched["properties"][name] = app["properties"].get(name)
        patched["properties"]["provisioningState"] = "InProgress"
        if revision is not None:
            patched["properties"]["template"]["revisionSuffix"] = revision.split("--", 1)[1]
            patched["properties"]["latestRevisionName"] = revision
            patched["properties"]["latestRevisionFqdn"] = f"{revision}.{ENV_DOMAIN}"
            if patched["properties"]["configuration"].get("activeRevisionsMode", "Single").lower() == "single":
                for old in self.revisions[key]:
                    old["properties"]["active"] = False
                    old["properties"]["trafficWeight"] = 0
            self.revisions[key].append(self._revision(patched, revision))
        self.apps[key] = patched

        operation = self.new_operation_id()
        self.operations[operation] = {"app": key, "polls_left": self.polls_before_done, "revision": revision}
        return 202, {"Location": self._operation_url(operation)}, None

    @staticmethod
    def _operation_url(operation: str) -> str:
        return operation_url("containerappOperationResults", operation, azure_async_operation=False)

    def poll_operation(self, operation: str) -> Answer:
        state = self.operations.get(operation)
        if state is None:
            return arm_error(404, "OperationNotFound", f"Operation {operation} not found.")
        if state["polls_left"] > 0:
            state["polls_left"] -= 1
            return 202, {"Location": self._operation_url(operation)}, None
        app = self.apps[state["app"]]
        app["properties"]["provisioningState"] = "Succeeded"
        if state["revision"]:
            app["properties"]["latestReadyRevisionName"] = state["revision"]
        return 200, {}, without_secret_values(app)


def install_routes(t: FakeContainerApps) -> None:
    def known(m) -> tuple[str, str] | None:
        key = (m["rg"], m["app"])
        return key if key in t.apps else None

    def not_found(m) -> Answer:
        return arm_error(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.App/containerApps/{m['app']}' under resource group '{m['rg']}' was not found.",
        )

    @t.route("GET", APP_ROUTE + "$")
    def app_get(t, req, m, rec):
        key = known(m)
        return (200, {}, without_secret_values(t.apps[key])) if key else not_found(m)

    @t.route("PATCH", APP_ROUTE + "$")
    def app_patch(t, req, m, rec):
        key = known(m)
        return t.patch_app(key, rec["json"] or {}) if key else not_found(m)

    @t.route("GET", APP_ROUTE + "/revisions$")
    def revisions_list(t, req, m, rec):
        key = known(m)
        return (200, {}, {"value": copy.deepcopy(t.revisions[key])}) if key else not_found(m)

    @t.route("GET", OPERATION_ROUTE)
    def operation_get(t, req, m, rec):
        return t.poll_operation(m["op"])
