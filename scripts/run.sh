#!/usr/bin/env bash
# Runs haproxy-pilot on the embedded default: HAProxy in master-worker mode serving a frontend
# on :8080 from a small helper program it supervises, and the stats page on :1936.
# An installed HAProxy is used where it is (also /usr/sbin, off a user's PATH); only what is
# missing is installed (that step needs root or sudo). Runs as any user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh run
exec node dist/src/main.js "$@"
