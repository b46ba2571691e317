"""The prod run launcher: dagster-azure's `AcaRunLauncher` (one Container Apps Job per run) plus the two things our
runs need that it does not do.

- Volumes. Every run is a new container, so without the environment's Azure Files shares mounted each run would
  write asset values and schema history to its own disk and the next run would not find them.
- Secrets. The parent copies every forwarded variable into the Job as a literal `value`, readable by anyone with
  Reader on the resource group. Here a secret variable becomes a Job secret that references Key Vault (read with the
  run's user-assigned identity) and an env var with `secretRef`, so the Job resource never holds the value.

Both are changes to the Job resource the parent builds, so the override is as small as that: the client's
`jobs.begin_create_or_update` adjusts the Job before sending it (`with_volumes_and_secrets`, a pure function);
launching, health checks and termination are the parent's.

This module is loaded by the Dagster instance (dagster.yaml), not at definitions load, so it imports the Azure SDK
at the top.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from azure.core.polling import LROPoller
from azure.identity import DefaultAzureCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.appcontainers.models import (
    EnvironmentVar,
    Job,
    ManagedServiceIdentity,
    ManagedServiceIdentityType,
    Secret,
    UserAssignedIdentity,
    Volume,
    VolumeMount,
)
from dagster import Array, Field, Map, Shape, StringSource
from dagster_azure.container_apps.launcher import AcaRunLauncher

from resources.dagster_internals import ConfigurableClassData, DagsterInvalidConfigError, cached_method

# Key Vault secret names: 1-127 alphanumerics and hyphens.
_KEY_VAULT_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


@dataclass(frozen=True)
class RunVolume:
    """An Azure Files storage of the Container Apps environment, mounted into the run container."""

    name: str  # the volume's name inside the Job
    storage_name: str  # the environment's storage (managedEnvironments/storages) that holds the share
    mount_path: str


@dataclass(frozen=True)
class RunJobAdditions:
    """What the run launcher adds to every run's Job. `secret_env_vars` maps an env var name to the name of the
    Key Vault secret that holds its value; `identity_id` is the user-assigned identity that reads the vault."""

    volumes: tuple[RunVolume, ...] = ()
    secret_env_vars: Mapping[str, str] = field(default_factory=dict)
    key_vault_url: str | None = None
    identity_id: str | None = None

    def __post_init__(self) -> None:
        if not self.secret_env_vars:
            return
        for setting in ("key_vault_url", "identity_id"):
            if not getattr(self, setting):
                raise _config_error(
                    f"secret_env_vars needs {setting}; set run_launcher.config.{setting} in dagster.yaml (the "
                    "infra_pulumi stack outputs it) or remove secret_env_vars."
                )
        bad = [f"{var}: {name!r}" for var, name in self.secret_env_vars.items() if not _KEY_VAULT_NAME.match(name)]
        if bad:
            raise _config_error(
                f"secret_env_vars names Key Vault secrets that cannot exist ({', '.join(bad)}); a Key Vault secret "
                "name is 1-127 letters, digits and hyphens."
            )

    def job_secret_name(self, env_var: str) -> str:
        # Container Apps secret names are lowercase; Key Vault names compare case-insensitively anyway.
        return self.secret_env_vars[env_var].lower().strip("-")

    def key_vault_secret_url(self, env_var: str) -> str:
        # No version in the URL: each run's Job is created fresh, so it reads the secret's current version.
        return f"{str(self.key_vault_url).rstrip('/')}/secrets/{self.secret_env_vars[env_var]}"


def _config_error(message: str) -> DagsterInvalidConfigError:
    return DagsterInvalidConfigError(f"WaldingerAcaRunLauncher: {message}", [], None)


def with_volumes_and_secrets(job: Job, additions: RunJobAdditions) -> Job:
    """A copy of `job` with the volumes mounted into every container, each secret env var as a Key Vault secret
    plus a `secretRef` (any literal value of that variable dropped), and the vault-reading identity attached."""
    job = copy.deepcopy(job)
    template = job.template
    if template is None:
        return job

    if additions.volumes:
        added = {volume.name for volume in additions.volumes}
        template.volumes = [v for v in template.volumes or [] if v.name not in added] + [
            Volume(name=volume.name, storage_type="AzureFile", storage_name=volume.storage_name)
            for volume in additions.volumes
        ]
    secret_refs = [
        EnvironmentVar(name=name, secret_ref=additions.job_secret_name(name)) for name in additions.secret_env_vars
    ]
    for container in template.containers or []:
        if additions.volumes:
            container.volume_mounts = [m for m in container.volume_mounts or [] if m.volume_name not in added] + [
                VolumeMount(volume_name=volume.name, mount_path=volume.mount_path) for volume in additions.volumes
            ]
        if secret_refs:
            kept = [env for env in container.env or [] if env.name not in additions.secret_env_vars]
            container.env = kept + copy.deepcopy(secret_refs)

    if additions.secret_env_vars:
        identity_id = str(additions.identity_id)
        secrets = {
            additions.job_secret_name(name): Secret(
                name=additions.job_secret_name(name),
                key_vault_url=additions.key_vault_secret_url(name),
                identity=identity_id,
            )
            for name in additions.secret_env_vars
        }
        configuration = job.configuration
        configuration.secrets = [s for s in configuration.secrets or [] if s.name not in secrets] + list(
            secrets.values()
        )
        job.identity = _with_user_assigned_identity(job.identity, identity_id)
    return job


def _with_user_assigned_identity(identity: ManagedServiceIdentity | None, identity_id: str) -> ManagedServiceIdentity:
    # Container Apps reads a Key Vault reference with the identity it names, which must be assigned to the Job; a
    # code location may give its runs another identity, so add this one rather than assume it is there.
    if identity is None or identity.type in (None, ManagedServiceIdentityType.NONE):
        return ManagedServiceIdentity(
            type=ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities={identity_id: UserAssignedIdentity()},
        )
    assigned = dict(identity.user_assigned_identities or {})
    if identity_id.lower() not in {key.lower() for key in assigned}:
        assigned[identity_id] = UserAssignedIdentity()
    kind = identity.type
    if kind == ManagedServiceIdentityType.SYSTEM_ASSIGNED:
        kind = ManagedServiceIdentityType.SYSTEM_ASSIGNED_USER_ASSIGNED
    return ManagedServiceIdentity(type=kind, user_assigned_identities=assigned)


class _JobsAddingVolumesAndSecrets:
    """The client's `jobs` operations, except that a created Job first goes through `adjust`."""

    def __init__(self, jobs: Any, adjust: Callable[[Job], Job]) -> None:
        self._jobs = jobs
        self._adjust = adjust

    def begin_create_or_update(
        self, resource_group_name: str, job_name: str, job_envelope: Job, **kwargs: Any
    ) -> LROPoller[Job]:
        return self._jobs.begin_create_or_update(resource_group_name, job_name, self._adjust(job_envelope), **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jobs, name)


class WaldingerAcaRunLauncher(AcaRunLauncher):
    """`AcaRunLauncher` whose Jobs mount `volumes` and take `secret_env_vars` from Key Vault.

    `client_kwargs` is for tests and is never set from config: `credential` replaces DefaultAzureCredential, the
    rest go to ContainerAppsAPIClient (e.g. `transport=`, `polling_interval=`).
    """

    def __init__(
        self,
        *,
        inst_data: ConfigurableClassData | None,
        subscription_id: str,
        resource_group: str,
        region: str,
        environment_id: str,
        env_vars: Sequence[str] | None,
        run_resources: Mapping[str, Any] | None,
        identity_id: str | None,
        run_job_replica_timeout: int | None,
        volumes: Sequence[RunVolume] | None = None,
        key_vault_url: str | None = None,
        secret_env_vars: Mapping[str, str] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            inst_data=inst_data,
            subscription_id=subscription_id,
            resource_group=resource_group,
            region=region,
            environment_id=environment_id,
            env_vars=env_vars,
            run_resources=run_resources,
            identity_id=identity_id,
            run_job_replica_timeout=run_job_replica_timeout,
        )
        self._run_job_additions = RunJobAdditions(
            volumes=tuple(volumes or ()),
            secret_env_vars=dict(secret_env_vars or {}),
            key_vault_url=key_vault_url,
            identity_id=identity_id,
        )
        self._client_kwargs = dict(client_kwargs or {})

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {
            **super().config_type(),
            "volumes": Field(
                Array(
                    Shape(
                        {
                            "name": Field(str, description="The volume's name inside the Job."),
                            "storage_name": Field(
                                str, description="The Container Apps environment's Azure Files storage."
                            ),
                            "mount_path": Field(str, description="Where the share appears in the run container."),
                        }
                    )
                ),
                is_required=False,
                description="Azure Files storages of the environment, mounted into every run container.",
            ),
            "key_vault_url": Field(
                StringSource,
                is_required=False,
                description="The Key Vault's URI (e.g. https://kv.vault.azure.net/); required with secret_env_vars.",
            ),
            "secret_env_vars": Field(
                Map(str, str),
                is_required=False,
                description=(
                    "Env var name -> Key Vault secret name. The run gets the variable from a Job secret that "
                    "references Key Vault (read with identity_id), never as a literal value in the Job."
                ),
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> Self:
        return cls(
            inst_data=inst_data,
            subscription_id=config_value["subscription_id"],
            resource_group=config_value["resource_group"],
            region=config_value["region"],
            environment_id=config_value["environment_id"],
            env_vars=config_value.get("env_vars"),
            run_resources=config_value.get("run_resources"),
            identity_id=config_value.get("identity_id"),
            run_job_replica_timeout=config_value.get("run_job_replica_timeout"),
            volumes=[RunVolume(**volume) for volume in config_value.get("volumes") or []],
            key_vault_url=config_value.get("key_vault_url"),
            secret_env_vars=config_value.get("secret_env_vars"),
        )

    @property
    def run_job_additions(self) -> RunJobAdditions:
        return self._run_job_additions

    @cached_method
    def _get_client(self) -> ContainerAppsAPIClient:
        """The parent's client (same calls, same credential by default) whose Jobs are created with the additions;
        overridden because the parent's hardcodes DefaultAzureCredential and sends the Job as it built it."""
        # As the parent: the SDK logs every request and response header at INFO.
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
        kwargs = dict(self._client_kwargs)
        credential = kwargs.pop("credential", None) or DefaultAzureCredential()
        client = ContainerAppsAPIClient(credential, self._subscription_id, **kwargs)
        additions = self._run_job_additions
        client.jobs = _JobsAddingVolumesAndSecrets(  # type: ignore[assignment]
            client.jobs, lambda job: with_volumes_and_secrets(job, additions)
        )
        return client
