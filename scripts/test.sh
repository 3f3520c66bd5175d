#!/usr/bin/env bash
# The whole test suite: unit tests next to the code, then end-to-end tests with real HAProxy,
# real etcd, a real DNS server and real containers. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh test
mapfile -t unit < <(find dist/src -name '*.test.js' | sort)
mapfile -t e2e < <(find dist/e2e -name '*.test.js' 2>/dev/null | sort)
# One file at a time: e2e tests start real servers and the machine has 2 cores.
exec node --test --test-concurrency=1 --test-reporter=spec "${unit[@]}" "${e2e[@]}"
