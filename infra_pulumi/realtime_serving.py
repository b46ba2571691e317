"""Real-time serving: a Container Apps environment (logs to Log Analytics) with a GPU workload profile, and the
serving app: vLLM's OpenAI-compatible server from the serving image in the registry, min replicas 0 with an HTTP
scale rule (it costs nothing while idle and wakes on the first request), health probes and ingress. It runs as a
user-assigned identity with AcrPull on the registry and read access to the model registry.

Which model version the app serves is not set here: Dagster's `realtime_deployment` asset patches the app's
container env (WALDINGER_MODEL_URI and friends) with the production version and Container Apps starts a new
revision. `pulumi up` therefore ignores later changes to that env and to the revision suffix, so an infra change
never rolls the served model back.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi import roles
from infra_pulumi.building_blocks import user_assigned_identity
from infra_pulumi.config import StackSettings
from infra_pulumi.ml_platform import MlPlatform
from infra_pulumi.pipeline_secrets import SERVING_API_KEY_SECRET, PipelineSecrets

CONTAINER_NAME = "vllm"  # the container Dagster's deployment patches (WALDINGER_CONTAINER_NAME)
SERVING_PORT = 8000
GPU_PROFILE_NAME = "gpu"
CONSUMPTION_PROFILE = {"name": "Consumption", "workload_profile_type": "Consumption"}
MODEL_SERVING_TAG = {"workload": "model-serving"}  # how the policy pack recognises apps that serve models


def _probe(kind: str, initial_delay: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "type": kind,
        "http_get": {"path": "/health", "port": SERVING_PORT},
        "initial_delay_seconds": initial_delay,
        "period_seconds": period,
        "failure_threshold": failures,
        "timeout_seconds": 5,
    }


class RealtimeServing(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
        pipeline_secrets: PipelineSecrets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("waldinger:serving:RealtimeServing", name, {}, opts)
        rg_name = resource_group.name
        self.environment = self._environment(name, settings, rg_name, ml)
        self.identity = user_assigned_identity(f"{name}-identity", settings, rg_name, self)
        role_assignments = self._identity_grants(name, ml, pipeline_secrets)
        self.app = self._app(name, settings, resource_group, ml, role_assignments)
        self.app_name = self.app.name
        self.url = self.app.configuration.apply(
            lambda configuration: f"https://{configuration.ingress.fqdn}/v1" if configuration.ingress.fqdn else None
        )
        self.register_outputs({"appName": self.app_name, "url": self.url, "environmentId": self.environment.id})

    def _environment(
        self, name: str, settings: StackSettings, rg_name: pulumi.Input[str], ml: MlPlatform
    ) -> azure_native.app.ManagedEnvironment:
        """The Container Apps environment: logs to Log Analytics, a Consumption and a GPU workload profile."""
        log_keys = azure_native.operationalinsights.get_shared_keys_output(
            resource_group_name=rg_name, workspace_name=ml.log_analytics.name
        )
        gpu_profile = {"name": GPU_PROFILE_NAME, "workload_profile_type": settings.serving_gpu_profile}
        if not settings.is_serverless_gpu:
            # Dedicated GPU nodes: none while the app is scaled to zero, at most one per replica.
            gpu_profile |= {"minimum_count": 0, "maximum_count": settings.serving_max_replicas}
        return azure_native.app.ManagedEnvironment(
            f"{name}-env",
            resource_group_name=rg_name,
            location=settings.location,
            app_logs_configuration={
                "destination": "log-analytics",
                "log_analytics_configuration": {
                    "customer_id": ml.log_analytics.customer_id,
                    "shared_key": log_keys.primary_shared_key,
                },
            },
            workload_profiles=[CONSUMPTION_PROFILE, gpu_profile],
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _identity_grants(
        self, name: str, ml: MlPlatform, pipeline_secrets: PipelineSecrets
    ) -> list[azure_native.authorization.RoleAssignment]:
        """What the app's identity may do: pull the image, download the model version, read the API key."""
        grants = roles.Grants(name, self.identity.principal_id, ml.subscription_id, self)
        return [
            grants("acr-pull", roles.ACR_PULL, ml.registry.id),
            *ml.grant_model_read(grants),
            # The one secret it needs (the API key), nothing else in the vault.
            grants("api-key-reader", roles.KEY_VAULT_SECRETS_USER, pipeline_secrets.serving_api_key.id),
        ]

    def _container(
        self, settings: StackSettings, resource_group: azure_native.resources.ResourceGroup, ml: MlPlatform
    ) -> dict[str, Any]:
        """The vLLM container: the serving image, the whole GPU profile's share, health probes."""
        cpu, memory = settings.serving_resources
        image = pulumi.Output.concat(ml.registry_login_server, f"/waldinger-serving:{settings.serving_image_tag}")
        env = [
            {"name": "AZURE_SUBSCRIPTION_ID", "value": ml.subscription_id},
            {"name": "AZURE_RESOURCE_GROUP", "value": resource_group.name},
            {"name": "AZUREML_WORKSPACE", "value": ml.workspace.name},
            # DefaultAzureCredential picks the user-assigned identity by its client id.
            {"name": "AZURE_CLIENT_ID", "value": self.identity.client_id},
            {"name": "WALDINGER_PORT", "value": str(SERVING_PORT)},
            # vLLM's OpenAI server requires `Authorization: Bearer <key>` on /v1 when this is set.
            {"name": "VLLM_API_KEY", "secret_ref": SERVING_API_KEY_SECRET},
        ]
        if settings.serving_max_model_len:
            env.append({"name": "WALDINGER_MAX_MODEL_LEN", "value": str(settings.serving_max_model_len)})
        return {
            "name": CONTAINER_NAME,
            "image": image,
            "resources": {"cpu": cpu, "memory": memory},
            "env": env,
            "probes": [
                # Downloading a 7B model and loading it onto the GPU takes minutes: the startup
                # probe allows ~11 minutes before liveness takes over.
                _probe("Startup", initial_delay=60, period=60, failures=10),
                _probe("Liveness", initial_delay=0, period=30, failures=3),
                _probe("Readiness", initial_delay=0, period=10, failures=3),
            ],
            "volume_mounts": [{"volume_name": "models", "mount_path": "/models"}],
        }

    def _app(
        self,
        name: str,
        settings: StackSettings,
        resource_group: azure_native.resources.ResourceGroup,
        ml: MlPlatform,
        role_assignments: list[azure_native.authorization.RoleAssignment],
    ) -> azure_native.app.ContainerApp:
        """The serving app on the GPU profile: min 0 replicas, an HTTP scale rule, external HTTPS ingress."""
        return azure_native.app.ContainerApp(
            f"{name}-app",
            resource_group_name=resource_group.name,
            location=settings.location,
            managed_environment_id=self.environment.id,
            workload_profile_name=GPU_PROFILE_NAME,
            identity={"type": "UserAssigned", "user_assigned_identities": [self.identity.id]},
            configuration={
                "active_revisions_mode": "Single",
                "registries": [{"server": ml.registry_login_server, "identity": self.identity.id}],
                "secrets": [
                    {
                        "name": SERVING_API_KEY_SECRET,
                        "key_vault_url": pulumi.Output.concat(ml.key_vault_uri, "secrets/", SERVING_API_KEY_SECRET),
                        "identity": self.identity.id,
                    }
                ],
                "ingress": {
                    "external": True,
                    "target_port": SERVING_PORT,
                    "transport": "auto",
                    "allow_insecure": False,
                    "traffic": [{"latest_revision": True, "weight": 100}],
                },
            },
            template={
                "containers": [self._container(settings, resource_group, ml)],
                "volumes": [{"name": "models", "storage_type": "EmptyDir"}],
                "scale": {
                    "min_replicas": 0,
                    "max_replicas": settings.serving_max_replicas,
                    "cooldown_period": settings.serving_cooldown_seconds,
                    "polling_interval": 30,
                    "rules": [
                        {
                            "name": "http-concurrency",
                            "http": {"metadata": {"concurrentRequests": str(settings.serving_concurrent_requests)}},
                        }
                    ],
                },
            },
            tags={**settings.tags, **MODEL_SERVING_TAG},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=role_assignments,
                # Dagster's deployment owns the served version (container env) and revision names.
                ignore_changes=["template.containers[0].env", "template.revisionSuffix"],
            ),
        )
