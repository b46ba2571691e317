"""The training settings, per environment (the switch is resources.environment.current_environment): the method
and hyperparameters, and in prod the Azure ML compute and environment the training job runs on.

Locally the tiny base is trained in full (LoRA on random weights learns little); in prod Mistral-7B-Instruct gets
LoRA adapters. The local defaults are the schedule measured in benchmarks/bench_training.py.
"""

import os
from dataclasses import dataclass

from resources import environment

TRAINING_ENVIRONMENT_VARIABLE = "WALDINGER_AZUREML_TRAINING_ENVIRONMENT"


@dataclass(frozen=True)
class TrainingSettings:
    method: str
    steps: int
    batch_size: int
    learning_rate: float
    eval_percent: int  # the share of labeled examples in the eval split (by a hash of the example id)


LOCAL_DEFAULTS = TrainingSettings(method="full", steps=1000, batch_size=32, learning_rate=3e-3, eval_percent=10)
PROD_DEFAULTS = TrainingSettings(method="lora", steps=600, batch_size=16, learning_rate=2e-4, eval_percent=10)


def training_settings() -> TrainingSettings:
    """WALDINGER_TRAINING_METHOD|STEPS|BATCH_SIZE|LEARNING_RATE and WALDINGER_EVAL_PERCENT over the defaults."""
    prod = environment.current_environment() is environment.Environment.PROD
    defaults = PROD_DEFAULTS if prod else LOCAL_DEFAULTS
    method = os.environ.get("WALDINGER_TRAINING_METHOD", defaults.method).strip().lower() or defaults.method
    if method not in ("full", "lora"):
        raise environment.SettingsError(f"WALDINGER_TRAINING_METHOD={method!r} must be 'full' or 'lora'.")
    eval_percent = environment._positive_int("WALDINGER_EVAL_PERCENT", defaults.eval_percent)
    if eval_percent >= 100:
        raise environment.SettingsError(f"WALDINGER_EVAL_PERCENT={eval_percent} must be below 100.")
    return TrainingSettings(
        method=method,
        steps=environment._positive_int("WALDINGER_TRAINING_STEPS", defaults.steps),
        batch_size=environment._positive_int("WALDINGER_TRAINING_BATCH_SIZE", defaults.batch_size),
        learning_rate=environment._fraction("WALDINGER_TRAINING_LEARNING_RATE", defaults.learning_rate),
        eval_percent=eval_percent,
    )


@dataclass(frozen=True)
class AzureTrainingSettings:
    compute: str
    environment: str


def azure_training_settings() -> AzureTrainingSettings:
    """The GPU cluster (infra_pulumi's trainingComputeName output) and the job's Azure ML environment."""
    compute = environment.azure_training_compute()
    job_environment = (
        os.environ.get(TRAINING_ENVIRONMENT_VARIABLE, "waldinger-training@latest").strip()
        or "waldinger-training@latest"
    )
    return AzureTrainingSettings(compute=compute, environment=job_environment)


def mlflow_tracking_uri() -> str:
    """Locally a sqlite store under the data directory (WALDINGER_MLFLOW_TRACKING_URI overrides it); in an Azure
    ML job the workspace's own, which Azure ML sets in the job's environment."""
    configured = os.environ.get("WALDINGER_MLFLOW_TRACKING_URI", "").strip()
    if configured:
        return configured
    return f"sqlite:///{environment.data_dir() / 'mlflow' / 'mlflow.db'}"
