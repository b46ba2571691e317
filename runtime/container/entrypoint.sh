#!/usr/bin/env bash
# The serving image's entrypoint.
#
#   no arguments, or `-- <vLLM args>`: start the real-time server. The Container Apps app's env says what to
#       serve; each value becomes a flag of waldinger_runtime.container_entrypoint, which downloads the
#       registered version, verifies its sha256 and execs vLLM's OpenAI server (arguments after `--` go to vLLM).
#       Optional: WALDINGER_MAX_MODEL_LEN, WALDINGER_PORT (default 8000), WALDINGER_DOWNLOAD_DIR (default /models).
#   any other command: run it as given. Azure ML command jobs on the compute cluster set their own command
#       (`python -m waldinger_runtime.batch_job ...`), so this ENTRYPOINT must not get in their way.
set -euo pipefail

if [[ $# -gt 0 && "$1" != "--" ]]; then
    exec "$@"
fi
if [[ $# -gt 0 ]]; then
    shift # the `--`
fi

required=(
    WALDINGER_MODEL_URI
    WALDINGER_MODEL_NAME
    WALDINGER_ARTIFACT_SHA256
    AZURE_SUBSCRIPTION_ID
    AZURE_RESOURCE_GROUP
    AZUREML_WORKSPACE
)
missing=()
for name in "${required[@]}"; do
    if [[ -z "${!name:-}" ]]; then
        missing+=("$name")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "waldinger-entrypoint: not set: ${missing[*]}." >&2
    echo "  Set them on the Container App's container (the Dagster deployment sets the WALDINGER_* ones with the" >&2
    echo "  production model version; the infra_pulumi stack sets the AZURE_* ones), or pass a command to run." >&2
    exit 64
fi

flags=(
    --model-uri "$WALDINGER_MODEL_URI"
    --served-model-name "$WALDINGER_MODEL_NAME"
    --sha256 "$WALDINGER_ARTIFACT_SHA256"
    --subscription-id "$AZURE_SUBSCRIPTION_ID"
    --resource-group "$AZURE_RESOURCE_GROUP"
    --workspace "$AZUREML_WORKSPACE"
    --download-dir "${WALDINGER_DOWNLOAD_DIR:-/models}"
    --port "${WALDINGER_PORT:-8000}"
)
if [[ -n "${WALDINGER_MAX_MODEL_LEN:-}" ]]; then
    flags+=(--max-model-len "$WALDINGER_MAX_MODEL_LEN")
fi

exec python3 -m waldinger_runtime.container_entrypoint "${flags[@]}" -- "$@"
