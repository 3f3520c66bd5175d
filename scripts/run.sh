#!/usr/bin/env bash
# Runs haproxy-pilot on the embedded default: HAProxy in master-worker mode serving a frontend
# on :8080 from a small helper program it supervises, and the stats page on :1936.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh run
exec node dist/src/main.js "$@"
