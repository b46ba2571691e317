"""Stack outputs are exactly the settings the prod Dagster deployment reads: each output is one environment
variable (`SETTINGS_BY_OUTPUT`, the mapping documented in infra_pulumi/README.md). The stack sets them on the
Dagster webserver and daemon apps itself; this helper gives the same settings to a Dagster process that runs
elsewhere (a laptop, a CI job):

    pulumi stack output --json | python -m infra_pulumi.stack_outputs            # `export NAME=value` lines
    pulumi stack output --json | python -m infra_pulumi.stack_outputs --format dotenv >> "$GITHUB_ENV"
    eval "$(pulumi -C infra_pulumi stack output --json | .venv/bin/python -m infra_pulumi.stack_outputs)"

No output is a secret (Snowflake key, webhook URL and Postgres URL stay in Key Vault); export those yourself.
Exit codes: 0, or 2 with a message naming the missing or malformed output.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

SETTINGS_BY_OUTPUT: dict[str, str] = {
    "subscriptionId": "AZURE_SUBSCRIPTION_ID",
    "resourceGroup": "AZURE_RESOURCE_GROUP",
    "location": "AZURE_LOCATION",
    "mlWorkspace": "AZUREML_WORKSPACE",
    "servingContainerApp": "WALDINGER_CONTAINER_APP",
    "servingContainerName": "WALDINGER_CONTAINER_NAME",
    "batchCompute": "WALDINGER_AML_COMPUTE",
    "batchEnvironment": "WALDINGER_AML_ENVIRONMENT",
    "trainingCompute": "WALDINGER_AZUREML_TRAINING_COMPUTE",
    "pipesStorageAccountUrl": "WALDINGER_PIPES_STORAGE_ACCOUNT_URL",
    "pipesContainer": "WALDINGER_PIPES_CONTAINER",
    "dagsterUrl": "WALDINGER_DAGSTER_URL",
    "containerAppsEnvironmentId": "WALDINGER_ACA_ENVIRONMENT_ID",
    "dagsterIdentityId": "WALDINGER_RUN_IDENTITY_ID",
    "keyVaultUrl": "WALDINGER_KEY_VAULT_URL",
    "computeLogsStorageAccount": "WALDINGER_COMPUTE_LOGS_STORAGE_ACCOUNT",
    "ioAdls2Account": "WALDINGER_IO_ADLS2_ACCOUNT",
    "ioAdls2Container": "WALDINGER_IO_ADLS2_CONTAINER",
    "snowflakeAccount": "SNOWFLAKE_ACCOUNT",
    "snowflakeUser": "SNOWFLAKE_USER",
    "snowflakeRole": "SNOWFLAKE_ROLE",
    "snowflakeWarehouse": "SNOWFLAKE_WAREHOUSE",
    "snowflakeDatabases": "WALDINGER_DATABASES",
    "modelName": "WALDINGER_MODEL_NAME",
    "modelAzuremlUri": "WALDINGER_MODEL_AZUREML_URI",
    "modelHfId": "WALDINGER_MODEL_HF_ID",
}
# The model comes from exactly one source, so exactly one of these is exported.
MODEL_SOURCE_OUTPUTS = ("modelAzuremlUri", "modelHfId")
OUTPUT_BY_SETTING = {setting: output for output, setting in SETTINGS_BY_OUTPUT.items()}


class StackOutputsError(ValueError):
    """The stack outputs lack a setting or hold one that is not a plain string."""


def outputs_from_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Stack outputs (name -> value) from the settings the program computed (variable -> value)."""
    unknown = sorted(set(settings) - set(OUTPUT_BY_SETTING))
    if unknown:
        raise StackOutputsError(f"No stack output is defined for {', '.join(unknown)}; add it to SETTINGS_BY_OUTPUT.")
    return {OUTPUT_BY_SETTING[name]: value for name, value in settings.items()}


def settings_from_outputs(outputs: Mapping[str, Any]) -> dict[str, str]:
    """The environment (variable -> value) for prod Dagster, from `pulumi stack output --json`."""
    required = [name for name in SETTINGS_BY_OUTPUT if name not in MODEL_SOURCE_OUTPUTS]
    missing = [name for name in required if outputs.get(name) in (None, "")]
    sources = [name for name in MODEL_SOURCE_OUTPUTS if outputs.get(name)]
    if len(sources) != 1:
        missing.append(" or ".join(MODEL_SOURCE_OUTPUTS) + " (exactly one)")
    if missing:
        raise StackOutputsError(
            f"The stack outputs lack {', '.join(missing)}. Run `pulumi up` for the stack (the outputs come from "
            "infra_pulumi/__main__.py), then `pulumi stack output --json` again."
        )
    settings = {"WALDINGER_ENV": "prod"}
    for name, variable in SETTINGS_BY_OUTPUT.items():
        value = outputs.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise StackOutputsError(f"Stack output {name} is {type(value).__name__}, not a string: {value!r}.")
        settings[variable] = value
    return settings


def render(settings: Mapping[str, str], output_format: str) -> str:
    if output_format == "shell":
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in settings.items())
    if any("\n" in value for value in settings.values()):
        raise StackOutputsError("A setting holds a newline, which a dotenv file cannot; use --format shell.")
    return "".join(f"{name}={value}\n" for name, value in settings.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra_pulumi.stack_outputs",
        description="Turn `pulumi stack output --json` into the environment prod Dagster reads.",
    )
    parser.add_argument("file", nargs="?", help="the JSON file (default: standard input)")
    parser.add_argument("--format", choices=("shell", "dotenv"), default="shell", dest="output_format")
    args = parser.parse_args(argv)
    try:
        text = open(args.file).read() if args.file else sys.stdin.read()  # noqa: SIM115
        try:
            outputs = json.loads(text)
        except json.JSONDecodeError as error:
            raise StackOutputsError(f"The input is not JSON ({error}); pipe `pulumi stack output --json` in.") from None
        if not isinstance(outputs, dict):
            raise StackOutputsError("The input is not a JSON object; pipe `pulumi stack output --json` in.")
        sys.stdout.write(render(settings_from_outputs(outputs), args.output_format))
    except (StackOutputsError, OSError) as error:
        print(f"stack_outputs: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
