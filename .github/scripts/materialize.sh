#!/usr/bin/env bash
# Materializes assets of the Waldinger code location: the one command CI (.github/workflows/materialize.yml)
# and developers (`make materialize`) use.
#
# Inputs, as environment variables:
#   SELECT           required  a Dagster asset selection, e.g.
#                              'waldinger/schema_drift/schema_snapshot,waldinger/schema_drift/drift_report'
#   PARTITION        optional  one day, YYYY-MM-DD
#   PARTITION_RANGE  optional  START...END (YYYY-MM-DD...YYYY-MM-DD): the whole range in one run
#                              (not both PARTITION and PARTITION_RANGE)
#   DAGSTER_BIN      optional  the dagster executable (default: the repo's .venv/bin/dagster, else dagster on PATH)
#
# The environment is the caller's: the embedded default unless WALDINGER_ENV=prod (then the prod settings,
# see README "Switching to prod"); runs are recorded in the Dagster instance at DAGSTER_HOME (default: the
# data directory's dagster_home, as in the Makefile). Exit codes: 0 materialized, 2 bad input, otherwise the
# run failed (e.g. a blocking check such as the drift gate failed). Prints the command it runs, never the
# values of other environment variables.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage="usage: SELECT='<asset selection>' [PARTITION=YYYY-MM-DD | PARTITION_RANGE=YYYY-MM-DD...YYYY-MM-DD] .github/scripts/materialize.sh
   or: make materialize SELECT='<asset selection>' [PARTITION=... | PARTITION_RANGE=...]"

fail() {
    echo "materialize.sh: $1" >&2
    echo "$usage" >&2
    exit 2
}

select="${SELECT:-}"
partition="${PARTITION:-}"
partition_range="${PARTITION_RANGE:-}"
day='[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'

if [[ -z "${select//[[:space:]]/}" ]]; then
    fail "SELECT is not set; set it to a Dagster asset selection, e.g. SELECT='waldinger/schema_drift/schema_snapshot,waldinger/schema_drift/drift_report'."
fi
if [[ -n "$partition" && -n "$partition_range" ]]; then
    fail "PARTITION and PARTITION_RANGE are both set; set only one (PARTITION for one day, PARTITION_RANGE for START...END)."
fi
# shellcheck disable=SC2053  # $day is a glob pattern on purpose
if [[ -n "$partition" && "$partition" != $day ]]; then
    fail "PARTITION='$partition' is not a day; set it to YYYY-MM-DD, e.g. PARTITION=$(date -u +%F)."
fi
# shellcheck disable=SC2053
if [[ -n "$partition_range" && "$partition_range" != $day...$day ]]; then
    fail "PARTITION_RANGE='$partition_range' is not a range of days; set it to START...END, e.g. PARTITION_RANGE=2026-11-01...2026-11-07."
fi
if [[ -n "$partition_range" && "${partition_range%...*}" > "${partition_range#*...}" ]]; then
    fail "PARTITION_RANGE='$partition_range' ends before it starts; set it to START...END with START <= END."
fi

if [[ -n "${DAGSTER_BIN:-}" ]]; then
    dagster="$DAGSTER_BIN"
elif [[ -x "$repo_root/.venv/bin/dagster" ]]; then
    dagster="$repo_root/.venv/bin/dagster"
else
    dagster="dagster"
fi
if ! command -v "$dagster" >/dev/null 2>&1; then
    fail "no dagster executable ('$dagster'); run 'make install' (creates .venv) or set DAGSTER_BIN."
fi

# Without DAGSTER_HOME Dagster would record the run in a throwaway instance: use the Makefile's default.
if [[ -z "${DAGSTER_HOME:-}" ]]; then
    DAGSTER_HOME="${WALDINGER_DATA_DIR:-$repo_root/.waldinger}/dagster_home"
    export DAGSTER_HOME
fi
mkdir -p "$DAGSTER_HOME"
[[ -e "$DAGSTER_HOME/dagster.yaml" ]] || touch "$DAGSTER_HOME/dagster.yaml"

command=("$dagster" asset materialize -m waldinger_assets.definitions --select "$select")
if [[ -n "$partition" ]]; then
    command+=(--partition "$partition")
elif [[ -n "$partition_range" ]]; then
    command+=(--partition-range "$partition_range")
fi

cd "$repo_root"
echo "materialize.sh: environment ${WALDINGER_ENV:-local}; running:"
printf -v printable ' %q' "${command[@]}"
echo " $printable"
exec "${command[@]}"
