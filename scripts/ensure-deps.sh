#!/usr/bin/env bash
# Installs what haproxy-pilot needs on a fresh Debian machine, only when it is missing:
#   scripts/ensure-deps.sh run    -> HAProxy + npm packages + build (enough to run the default)
#   scripts/ensure-deps.sh test   -> also what the test suite uses (etcd, dnsmasq, podman, wrk, …)
#   --dry-run                     -> only say which Debian packages would be installed
# Installing packages needs root (or sudo); the rest does not.
set -euo pipefail
cd "$(dirname "$0")/.."
dry_run=
if [ "${1:-}" = --dry-run ]; then dry_run=1; shift; fi
what="${1:-run}"

need_pkgs=()
# A program counts as installed on PATH or in the sbin directories, which are on root's PATH
# only (Debian's haproxy is /usr/sbin/haproxy): haproxy-pilot looks there too.
installed() {
  command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || [ -x "/usr/local/sbin/$1" ] || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}
want() { installed "$1" || need_pkgs+=("$2"); }
want_file() { [ -e "$1" ] || need_pkgs+=("$2"); }
want haproxy haproxy
want unshare util-linux
want ps procps
want python3 python3
if [ "$what" = test ]; then
  want etcd etcd-server
  want etcdctl etcd-client
  want dnsmasq dnsmasq-base
  want wrk wrk
  want curl curl
  want ip iproute2
  want podman podman
  want buildah buildah
  want runc runc
  want mmdebstrap mmdebstrap
  want newuidmap uidmap
  want fuser psmisc
  want /usr/lib/podman/netavark netavark
  want iptables iptables
  want nsenter util-linux
  # Real ZooKeeper for the zookeeper source's tests (e2e/support/zookeeper.ts runs the jar).
  want java default-jre-headless
  want_file /usr/share/java/zookeeper.jar zookeeper
  want_file /usr/share/java/slf4j-simple.jar libslf4j-java
fi
if [ -n "$dry_run" ]; then
  if [ ${#need_pkgs[@]} -gt 0 ]; then echo "ensure-deps: would install Debian packages: ${need_pkgs[*]}"; fi
  exit 0
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "ensure-deps: installing Debian packages: ${need_pkgs[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# npm packages: install when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
# Build when any source is newer than the last build.
if [ ! -f dist/.built ] || [ -n "$(find src e2e bench tsconfig.json package.json -newer dist/.built -print -quit 2>/dev/null)" ]; then
  echo "ensure-deps: building" >&2
  rm -rf dist  # a moved or deleted file must not leave its old build (and tests) behind
  npx tsc -p tsconfig.json
  touch dist/.built
fi
