"""The pipeline's secrets (Snowflake private key, alert webhook URL, the endpoint's API key) as Key Vault
secrets, from Pulumi secrets.

Nothing else in the stack holds their values: the Container Apps and the Dagster run jobs reference the Key
Vault secret by URL with a managed identity, so a secret never appears in an app's definition, a stack output
or a log.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi.config import StackSecrets, StackSettings

# Key Vault secret names, shared with the Dagster apps' secret references and the prod dagster.yaml.
SNOWFLAKE_PRIVATE_KEY_SECRET = "snowflake-private-key"
ALERT_WEBHOOK_SECRET = "alert-webhook-url"
SERVING_API_KEY_SECRET = "serving-api-key"
DAGSTER_POSTGRES_URL_SECRET = "dagster-postgres-url"


def vault_secret(
    name: str,
    *,
    secret_name: str,
    value: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> azure_native.keyvault.Secret:
    return azure_native.keyvault.Secret(
        name,
        resource_group_name=resource_group_name,
        vault_name=vault_name,
        secret_name=secret_name,
        properties={"value": pulumi.Output.secret(value)},
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["properties"]),
    )


class PipelineSecrets(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        secrets: StackSecrets,
        vault_name: pulumi.Input[str],
        resource_group_name: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("waldinger:secrets:PipelineSecrets", name, {}, opts)
        common = {
            "vault_name": vault_name,
            "resource_group_name": resource_group_name,
            "tags": settings.tags,
            "parent": self,
        }
        # Secret name -> environment variable the Dagster code reads it from.
        self.environment_variables: dict[str, str] = {
            SNOWFLAKE_PRIVATE_KEY_SECRET: "SNOWFLAKE_PRIVATE_KEY",
            ALERT_WEBHOOK_SECRET: "WALDINGER_ALERT_WEBHOOK_URL",
            SERVING_API_KEY_SECRET: "WALDINGER_SERVING_API_KEY",
        }
        self.snowflake_private_key = vault_secret(
            f"{name}-snowflake-key",
            secret_name=SNOWFLAKE_PRIVATE_KEY_SECRET,
            value=secrets.snowflake_private_key,
            **common,
        )
        self.alert_webhook_url = vault_secret(
            f"{name}-alert-webhook",
            secret_name=ALERT_WEBHOOK_SECRET,
            value=secrets.alert_webhook_url,
            **common,
        )
        # Dagster sends it (smoke test); the serving container hands it to vLLM as VLLM_API_KEY.
        self.serving_api_key = vault_secret(
            f"{name}-serving-api-key",
            secret_name=SERVING_API_KEY_SECRET,
            value=secrets.serving_api_key,
            **common,
        )
        self.register_outputs({"secretNames": sorted(self.environment_variables)})
