"""Container Apps Jobs, faked at the HTTP boundary the way the run launcher (waldinger_assets/platform/) uses them
through azure-mgmt-appcontainers; part of FakeContainerApps (tests/fakes/container_apps.py).

- PUT jobs/{job}: the secret check of an app's PATCH, and an env var's `secretRef` must name one of the Job's
  secrets (ContainerAppSecretRefNotFound). The answer is 201 (200 for an existing Job) with an
  Azure-AsyncOperation header; that status answers InProgress `polls_before_done` times, then Succeeded.
- GET jobs/{job}: the Job without secret values.
- POST jobs/{job}/start: a new execution, Running; 202 with a Location that answers the execution.
- GET jobs/{job}/executions, GET jobs/{job}/executions/{execution}: the Job's executions.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.azure_ml import SUB, FakeTransport
from tests.fakes.container_apps_arm import (
    API_VERSION,
    ARM,
    NOW,
    Answer,
    arm_error,
    invalid_secrets,
    operation_url,
    without_secret_values,
)

JOB_ROUTE = ARM + rf"/subscriptions/{SUB}/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.App/jobs/(?P<job>[^/]+)"
JOB_OPERATION_ROUTE = (
    ARM + rf"/subscriptions/{SUB}/providers/Microsoft\.App/locations/[^/]+/containerappOperationStatuses/(?P<op>[^/]+)$"
)


class ContainerAppsJobs:
    """The Jobs half of FakeContainerApps: `jobs[(rg, name)]` is each Job as the service stores it (secret values
    included), `job_executions[(rg, name)]` its executions, oldest first. The class it is mixed into supplies
    `polls_before_done` and `new_operation_id()`."""

    polls_before_done: int

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.job_executions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.job_operations: dict[str, dict[str, Any]] = {}

    def new_operation_id(self) -> str:
        raise NotImplementedError

    def put_job(self, key: tuple[str, str], body: dict[str, Any]) -> Answer:
        properties = body.get("properties") or {}
        configuration = properties.get("configuration") or {}
        invalid = invalid_secrets(configuration.get("secrets"))
        if invalid:
            return invalid
        defined = {secret.get("name") for secret in configuration.get("secrets") or []}
        for container in (properties.get("template") or {}).get("containers") or []:
            for env in container.get("env") or []:
                if env.get("secretRef") and env["secretRef"] not in defined:
                    return arm_error(
                        400,
                        "ContainerAppSecretRefNotFound",
                        f"SecretRef '{env['secretRef']}' defined for container '{container.get('name')}' not found.",
                    )
        existed = key in self.jobs
        job = copy.deepcopy(body)
        job.update(
            id=f"/subscriptions/{SUB}/resourceGroups/{key[0]}/providers/Microsoft.App/jobs/{key[1]}",
            name=key[1],
            type="Microsoft.App/jobs",
            systemData={"createdAt": NOW, "createdBy": "dagster@example.com", "createdByType": "Application"},
        )
        job.setdefault("properties", {})["provisioningState"] = "InProgress"
        self.jobs[key] = job
        self.job_executions.setdefault(key, [])
        operation = self.new_operation_id()
        self.job_operations[operation] = {"job": key, "polls_left": self.polls_before_done}
        url = operation_url("containerappOperationStatuses", operation, azure_async_operation=True)
        return (200 if existed else 201), {"Azure-AsyncOperation": url}, without_secret_values(job)

    def poll_job_operation(self, operation: str) -> Answer:
        state = self.job_operations.get(operation)
        if state is None:
            return arm_error(404, "OperationNotFound", f"Operation {operation} not found.")
        if state["polls_left"] > 0:
            state["polls_left"] -= 1
            return 200, {}, {"id": operation, "name": operation, "status": "InProgress", "startTime": NOW}
        self.jobs[state["job"]]["properties"]["provisioningState"] = "Succeeded"
        return 200, {}, {"id": operation, "name": operation, "status": "Succeeded", "startTime": NOW, "endTime": NOW}

    def start_job(self, key: tuple[str, str]) -> Answer:
        executions = self.job_executions[key]
        name = f"{key[1]}-{len(executions) + 1:07d}"
        job_id = self.jobs[key]["id"]
        executions.append(
            {
                "id": f"{job_id}/executions/{name}",
                "name": name,
                "type": "Microsoft.App/jobs/executions",
                "properties": {
                    "status": "Running",
                    "startTime": NOW,
                    "template": copy.deepcopy(self.jobs[key]["properties"].get("template")),
                },
            }
        )
        location = f"https://management.azure.com{job_id}/executions/{name}?api-version={API_VERSION}"
        return 202, {"Location": location}, None


def install_job_routes(t: FakeTransport) -> None:
    """The Jobs endpoints on `t`, a FakeTransport that is also ContainerAppsJobs."""

    def job_not_found(m) -> Answer:
        return arm_error(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.App/jobs/{m['job']}' under resource group '{m['rg']}' was not found.",
        )

    @t.route("PUT", JOB_ROUTE + "$")
    def job_put(t, req, m, rec):
        return t.put_job((m["rg"], m["job"]), rec["json"] or {})

    @t.route("GET", JOB_ROUTE + "$")
    def job_get(t, req, m, rec):
        key = (m["rg"], m["job"])
        return (200, {}, without_secret_values(t.jobs[key])) if key in t.jobs else job_not_found(m)

    @t.route("GET", JOB_OPERATION_ROUTE)
    def job_operation_get(t, req, m, rec):
        return t.poll_job_operation(m["op"])

    @t.route("POST", JOB_ROUTE + "/start$")
    def job_start(t, req, m, rec):
        key = (m["rg"], m["job"])
        return t.start_job(key) if key in t.jobs else job_not_found(m)

    @t.route("GET", JOB_ROUTE + "/executions$")
    def job_executions_list(t, req, m, rec):
        key = (m["rg"], m["job"])
        return (200, {}, {"value": copy.deepcopy(t.job_executions[key])}) if key in t.jobs else job_not_found(m)

    @t.route("GET", JOB_ROUTE + "/executions/(?P<execution>[^/]+)$")
    def job_execution_get(t, req, m, rec):
        key = (m["rg"], m["job"])
        found = [e for e in t.job_executions.get(key, []) if e["name"] == m["execution"]]
        if not found:
            return arm_error(404, "ResourceNotFound", f"Job execution '{m['execution']}' was not found.")
        return 200, {}, copy.deepcopy(found[0])
