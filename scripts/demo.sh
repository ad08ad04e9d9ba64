#!/usr/bin/env bash
# The embedded default end to end: the `avatar` Prefect flow runs every DVC stage of the curriculum
# (ingest -> hints -> sft -> rl@s1 -> rl@s2 -> rl@s3 -> evaluate) on the tiny Qwen2.5-Omni thinker and
# the synthetic audio-visual data, then prints the evaluation table. Stages DVC finds up to date are
# skipped, so a second `make demo` only reprints the table. Runs in Prefect's ephemeral mode: no
# server to start; `scripts/prefect_local.sh` runs the same flow as a deployment with a UI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"  # the stages run `avatar` and `dvc` from the environment
export DO_NOT_TRACK=1 DVC_NO_ANALYTICS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_HOME=${PREFECT_HOME:-$PWD/.prefect-local/home}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
mkdir -p .prefect-local && echo "*" >.prefect-local/.gitignore
start=$(date +%s)
"$VENV/bin/python" -m flows.avatar
echo
echo "== held-out accuracy by stage (results/eval/results.md; plot: results/eval/accuracy_by_stage.png) =="
cat results/eval/results.md
echo "demo finished in $(( $(date +%s) - start )) s"
