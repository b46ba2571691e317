"""The prod real-time endpoint: an Azure Container Apps app (created by the infra_pulumi stack, scale-to-zero)
whose container runs vLLM's OpenAI-compatible server from the image in serving/container/. The container reads
which registered version to serve from its env (WALDINGER_MODEL_URI and friends), so deploying a version means
changing that env: the app's template changes, and Container Apps starts a new revision that serves it.

The update is a PATCH of `properties.template` (JSON merge patch), not a PUT of the whole app: a GET returns the
app's secrets without their values, and a PUT of that body is rejected by the service ("Container app secret(s)
... are invalid: value or keyVaultUrl and identity should be provided"). Sending only the template leaves the
secrets, ingress and identity untouched and never handles a secret value.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

MODEL_NAME_ENV = "WALDINGER_MODEL_NAME"
MODEL_VERSION_ENV = "WALDINGER_MODEL_VERSION"
MODEL_URI_ENV = "WALDINGER_MODEL_URI"
SHA256_ENV = "WALDINGER_ARTIFACT_SHA256"
DEFAULT_CONTAINER = "vllm"
# The service rejects a revision whose name (`<app>--<suffix>`) is longer than this.
MAX_REVISION_NAME = 54
SHA_CHARS = 8
_ADVICE_APP = "create it with the infra_pulumi stack (`pulumi up`) or set WALDINGER_CONTAINER_APP"


class ContainerAppsError(RuntimeError):
    """The Container Apps deployment cannot be read or updated; the message says what to do."""


@dataclass(frozen=True)
class ContainerAppDeployment:
    url: str  # the OpenAI API's base URL, ending in /v1
    fqdn: str
    revision: str  # the app's latest revision, the one that serves `version`
    model: str
    version: str
    sha256: str
    image: str
    updated: bool  # False when the app already served this version

    def to_json(self) -> dict:
        return asdict(self)


def connect(subscription_id: str, credential=None, **client_kwargs):
    """A ContainerAppsAPIClient; `client_kwargs` go to the client (e.g. `transport=`, `polling_interval=`)."""
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    if not subscription_id:
        raise ContainerAppsError(
            "No Azure subscription id was given; set AZURE_SUBSCRIPTION_ID or run with WALDINGER_ENV=local."
        )
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return ContainerAppsAPIClient(credential, subscription_id, **client_kwargs)


# --------------------------------------------------------------------------------------
# Pure logic
# --------------------------------------------------------------------------------------
def revision_suffix(app_name: str, version: str, sha256: str, existing_revisions: Iterable[str] = ()) -> str:
    """`v<version>-<sha[:8]>`, made valid for Container Apps (lowercase alphanumerics and '-', starts with a
    letter, ends alphanumeric, no '--', `<app>--<suffix>` at most 54 characters) and unique among the app's
    revisions: serving a version again (a rollback) gets `-r2`, `-r3`, ... because a suffix cannot be reused."""
    sha_part = re.sub(r"[^a-z0-9]", "", sha256.lower())[:SHA_CHARS]
    if len(sha_part) < SHA_CHARS:
        raise ContainerAppsError(f"sha256 {sha256!r} is not an artifact hash; pass the registered artifact_sha256.")
    version_part = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", version.lower())).strip("-")
    taken = {name.lower() for name in existing_revisions}
    for attempt in range(1, 1000):
        tail = f"-{sha_part}" + (f"-r{attempt}" if attempt > 1 else "")
        room = MAX_REVISION_NAME - len(app_name) - len("--") - len("v") - len(tail)
        if room < 1:
            raise ContainerAppsError(
                f"Container App name {app_name!r} is too long to name revisions after the model version "
                f"(`<app>--<suffix>` must fit in {MAX_REVISION_NAME} characters); use a shorter app name."
            )
        suffix = re.sub(r"-+", "-", f"v{version_part[:room].strip('-')}{tail}")
        if f"{app_name}--{suffix}".lower() not in taken:
            return suffix
    raise ContainerAppsError(f"Container App {app_name!r} already has revisions for every suffix of {version}.")


def _env_value(container, name: str) -> str | None:
    for var in container.env or []:
        if var.name == name:
            return var.value
    return None


def _with_env(env: list, updates: dict[str, str]) -> list:
    """The env list with `updates` set (in place where a name exists, appended otherwise); every other
    variable, secretRef ones included, is kept as it was."""
    from azure.mgmt.appcontainers.models import EnvironmentVar

    result, seen = [], set()
    for var in env:
        if var.name in updates:
            result.append(EnvironmentVar(name=var.name, value=updates[var.name]))
            seen.add(var.name)
        else:
            result.append(var)
    result.extend(EnvironmentVar(name=name, value=value) for name, value in updates.items() if name not in seen)
    return result


# --------------------------------------------------------------------------------------
# Reading the app
# --------------------------------------------------------------------------------------
def _get_app(client, resource_group: str, app_name: str):
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        return client.container_apps.get(resource_group, app_name)
    except ResourceNotFoundError:
        raise ContainerAppsError(
            f"Container App {app_name!r} not found in resource group {resource_group!r}; {_ADVICE_APP}."
        ) from None
    except HttpResponseError as error:
        raise ContainerAppsError(
            f"Reading Container App {app_name!r} in resource group {resource_group!r} failed: {_arm_error(error)}. "
            "Check that the identity running Dagster has Reader (or Contributor) on the app."
        ) from None


def _arm_error(error) -> str:
    code = getattr(getattr(error, "error", None), "code", None)
    message = getattr(getattr(error, "error", None), "message", None) or error.reason or str(error).splitlines()[0]
    return f"HTTP {error.status_code} {code + ': ' if code else ''}{message}"


def _container(app, app_name: str, container_name: str):
    containers = (app.template.containers if app.template else None) or []
    for container in containers:
        if container.name == container_name:
            return container
    present = ", ".join(repr(c.name) for c in containers) or "none"
    raise ContainerAppsError(
        f"Container App {app_name!r} has no container named {container_name!r} (its containers: {present}); "
        "pass the name of the vLLM container, or fix the container name in the infra_pulumi stack."
    )


def _fqdn(app, app_name: str) -> str:
    ingress = app.configuration.ingress if app.configuration else None
    if ingress is None or not ingress.fqdn:
        raise ContainerAppsError(
            f"Container App {app_name!r} has no ingress, so nothing can reach its OpenAI server; enable external "
            "ingress on target port 8000 in the infra_pulumi stack."
        )
    return ingress.fqdn


def _check_traffic_follows_latest(app, app_name: str) -> None:
    """In multiple-revision mode a new revision gets only the traffic the ingress gives it; unless 100% goes to
    the latest revision, the new version would be deployed but not served."""
    configuration = app.configuration
    mode = (configuration.active_revisions_mode if configuration else None) or "Single"
    # The SDK turns known values into enum members, whose str() is "ActiveRevisionsMode.SINGLE".
    mode = str(getattr(mode, "value", mode))
    if mode.lower() == "single":
        return
    traffic = (configuration.ingress.traffic if configuration.ingress else None) or []
    if not any(t.latest_revision and (t.weight or 0) == 100 for t in traffic):
        raise ContainerAppsError(
            f"Container App {app_name!r} runs in {mode} revision mode and its ingress does not send 100% of the "
            "traffic to the latest revision, so a new revision would not serve requests. Set the ingress traffic "
            "to latestRevision=true weight=100 (or activeRevisionsMode=Single) in the infra_pulumi stack."
        )


def _deployment(app, app_name: str, container, updated: bool) -> ContainerAppDeployment:
    fqdn = _fqdn(app, app_name)
    return ContainerAppDeployment(
        url=f"https://{fqdn}/v1",
        fqdn=fqdn,
        revision=app.latest_revision_name or "",
        model=_env_value(container, MODEL_NAME_ENV) or "",
        version=_env_value(container, MODEL_VERSION_ENV) or "",
        sha256=_env_value(container, SHA256_ENV) or "",
        image=container.image or "",
        updated=updated,
    )


def served_version(client, resource_group: str, app_name: str, container_name: str = DEFAULT_CONTAINER) -> dict:
    """What the app is configured to serve: model, version, sha256 (from the container's env), its latest
    revision and the latest revision that is ready, and the OpenAI base URL."""
    app = _get_app(client, resource_group, app_name)
    container = _container(app, app_name, container_name)
    fqdn = _fqdn(app, app_name)
    return {
        "model": _env_value(container, MODEL_NAME_ENV),
        "version": _env_value(container, MODEL_VERSION_ENV),
        "sha256": _env_value(container, SHA256_ENV),
        "revision": app.latest_revision_name,
        "ready_revision": app.latest_ready_revision_name,
        "url": f"https://{fqdn}/v1",
    }


# --------------------------------------------------------------------------------------
# Deploying a version
# --------------------------------------------------------------------------------------
def deploy_version(
    client,
    resource_group: str,
    app_name: str,
    *,
    model_name: str,
    version: str,
    model_uri: str,
    sha256: str,
    container_name: str = DEFAULT_CONTAINER,
) -> ContainerAppDeployment:
    """Makes a new revision of the app serve `version` (its env names the version; the rest of the app, scale
    included, stays as it was). Does nothing when the app already serves that version with those bytes."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.appcontainers.models import ContainerApp, ContainerAppProperties, Template

    app = _get_app(client, resource_group, app_name)
    container = _container(app, app_name, container_name)
    _fqdn(app, app_name)
    if _env_value(container, MODEL_VERSION_ENV) == version and _env_value(container, SHA256_ENV) == sha256:
        return _deployment(app, app_name, container, updated=False)
    _check_traffic_follows_latest(app, app_name)

    existing = tuple(r.name for r in client.container_apps_revisions.list_revisions(resource_group, app_name))
    suffix = revision_suffix(app_name, version, sha256, existing)
    # A copy of the whole template (every container, scale, volumes), changed only in the target container's
    # env and the revision suffix: JSON merge patch replaces lists whole, so nothing may be left out.
    template = Template(copy.deepcopy(app.template.as_dict()))
    target = next(c for c in template.containers if c.name == container_name)
    target.env = _with_env(
        list(target.env or []),
        {MODEL_NAME_ENV: model_name, MODEL_VERSION_ENV: version, MODEL_URI_ENV: model_uri, SHA256_ENV: sha256},
    )
    template.revision_suffix = suffix
    patch = ContainerApp(properties=ContainerAppProperties(template=template))
    try:
        client.container_apps.begin_update(resource_group, app_name, patch).result()
    except HttpResponseError as error:
        raise ContainerAppsError(
            f"Updating Container App {app_name!r} to serve {model_name} version {version} failed: "
            f"{_arm_error(error)}. The app still serves what it served before; fix the cause and rematerialize."
        ) from None

    updated_app = _get_app(client, resource_group, app_name)
    expected_revision = f"{app_name}--{suffix}"
    if (updated_app.latest_revision_name or "").lower() != expected_revision.lower():
        raise ContainerAppsError(
            f"Container App {app_name!r} accepted the update but its latest revision is "
            f"{updated_app.latest_revision_name!r}, not {expected_revision!r}; check the app's revisions "
            "(`az containerapp revision list`) and its system logs."
        )
    return _deployment(updated_app, app_name, _container(updated_app, app_name, container_name), updated=True)
