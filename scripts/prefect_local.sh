#!/usr/bin/env bash
# Run the pipeline's Prefect deployments on this machine, all on loopback:
#   1. `prefect server start --host 127.0.0.1` (UI and API on http://127.0.0.1:$PREFECT_PORT)
#   2. a process worker on pool `local` (the worker creates the pool; `prefect work-pool create
#      --type process` would try to fetch a registry from the internet)
#   3. `prefect deploy --all` (prefect.yaml: full-curriculum, and nightly at 02:00 UTC)
#   4. `prefect deployment run avatar/full-curriculum` unless --no-run is given
# Server and worker keep running (their logs are under .prefect-local/); stop them with
# `scripts/prefect_local.sh stop`. Telemetry is off (prefect.toml, DO_NOT_TRACK, DVC_NO_ANALYTICS).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PREFECT="$VENV/bin/prefect"
PORT=${PREFECT_PORT:-4200}
STATE=.prefect-local
export DO_NOT_TRACK=1 DVC_NO_ANALYTICS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_API_URL="http://127.0.0.1:$PORT/api"
# Flow runs execute `dvc` and the `avatar` CLI from the stages: the worker must find them on PATH.
export PATH="$PWD/$VENV/bin:$PATH"
export PREFECT_HOME=${PREFECT_HOME:-$PWD/$STATE/home}
mkdir -p "$STATE" && echo "*" >"$STATE/.gitignore"  # logs and state stay out of git

stop() {
  for name in worker server; do
    if [ -f "$STATE/$name.pid" ]; then
      kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      rm -f "$STATE/$name.pid"
      echo "stopped $name"
    fi
  done
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi

if ! curl -sf "$PREFECT_API_URL/health" >/dev/null; then
  "$PREFECT" server start --host 127.0.0.1 --port "$PORT" >"$STATE/server.log" 2>&1 &
  echo $! >"$STATE/server.pid"
  for _ in $(seq 1 60); do
    curl -sf "$PREFECT_API_URL/health" >/dev/null && break
    sleep 1
  done
  curl -sf "$PREFECT_API_URL/health" >/dev/null || { echo "server did not start; see $STATE/server.log" >&2; exit 1; }
fi
echo "Prefect server: http://127.0.0.1:$PORT"

if [ ! -f "$STATE/worker.pid" ] || ! kill -0 "$(cat "$STATE/worker.pid")" 2>/dev/null; then
  "$PREFECT" worker start --pool local --type process >"$STATE/worker.log" 2>&1 &
  echo $! >"$STATE/worker.pid"
  for _ in $(seq 1 60); do
    "$PREFECT" work-pool inspect local >/dev/null 2>&1 && break
    sleep 1
  done
fi

"$PREFECT" --no-prompt deploy --all
if [ "${1:-}" != "--no-run" ]; then
  "$PREFECT" deployment run avatar/full-curriculum --watch
fi
