"""The Waldinger stack: wiring only. Each concern is one component (see its module); the stack outputs are
exactly the settings prod Dagster reads (infra_pulumi/stack_outputs.py)."""

import pulumi
import pulumi_azure_native as azure_native

from infra_pulumi.batch_compute import BatchCompute
from infra_pulumi.config import read_stack_config
from infra_pulumi.dagster_platform import DagsterOnAzure
from infra_pulumi.ml_platform import MlPlatform
from infra_pulumi.pipeline_secrets import PipelineSecrets
from infra_pulumi.realtime_serving import CONTAINER_NAME, RealtimeServing
from infra_pulumi.stack_outputs import outputs_from_settings
from infra_pulumi.training_compute import TrainingCompute

settings, secrets = read_stack_config()
prefix = f"{settings.project}-{settings.environment}"

resource_group = azure_native.resources.ResourceGroup(f"{prefix}-rg", location=settings.location, tags=settings.tags)
ml = MlPlatform(f"{prefix}-ml", settings, resource_group)
pipeline_secrets = PipelineSecrets(f"{prefix}-secrets", settings, secrets, ml.key_vault.name, resource_group.name)
batch = BatchCompute(f"{prefix}-batch", settings, resource_group, ml)
training = TrainingCompute(f"{prefix}-training", settings, resource_group, ml, batch.pipes_container)
serving = RealtimeServing(f"{prefix}-serving", settings, resource_group, ml, pipeline_secrets)

pipeline_settings = {
    "AZURE_SUBSCRIPTION_ID": ml.subscription_id,
    "AZURE_RESOURCE_GROUP": resource_group.name,
    "AZUREML_WORKSPACE": ml.workspace.name,
    "WALDINGER_CONTAINER_APP": serving.app_name,
    "WALDINGER_CONTAINER_NAME": CONTAINER_NAME,
    "WALDINGER_AML_COMPUTE": batch.compute_name,
    "WALDINGER_AML_ENVIRONMENT": batch.environment,
    "WALDINGER_AZUREML_TRAINING_COMPUTE": training.compute_name,
    "WALDINGER_PIPES_STORAGE_ACCOUNT_URL": batch.pipes_account_url,
    "WALDINGER_PIPES_CONTAINER": batch.pipes_container.name,
    "SNOWFLAKE_ACCOUNT": settings.snowflake_account,
    "SNOWFLAKE_USER": settings.snowflake_user,
    "SNOWFLAKE_ROLE": settings.snowflake_role,
    "SNOWFLAKE_WAREHOUSE": settings.snowflake_warehouse,
    "WALDINGER_DATABASES": ",".join(settings.snowflake_databases),
    "WALDINGER_MODEL_NAME": settings.model_name,
}
if settings.model_azureml_uri:
    pipeline_settings["WALDINGER_MODEL_AZUREML_URI"] = settings.model_azureml_uri
else:
    pipeline_settings["WALDINGER_MODEL_HF_ID"] = settings.model_hf_id

dagster = DagsterOnAzure(
    f"{prefix}-dagster",
    settings,
    secrets,
    resource_group,
    ml,
    serving,
    batch,
    pipeline_secrets,
    pipeline_settings,
)

for output_name, value in outputs_from_settings(dagster.settings).items():
    pulumi.export(output_name, value)
