# haproxy-pilot on top of an HAProxy image: PID 1 is haproxy-pilot (Node.js), which runs HAProxy
# in master-worker mode, renders its config and reloads it without dropping connections.
#
#   docker build -t haproxy-pilot .
#   docker build --build-arg HAPROXY_IMAGE=haproxy:3.0 -t haproxy-pilot:hap3.0 .
#
# HAPROXY_IMAGE must be glibc-based (the official Debian variants, not -alpine), because Node's
# binary is copied from NODE_IMAGE; use a NODE_IMAGE with the same libc and CPU architecture.
ARG HAPROXY_IMAGE=haproxy:3.2
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /build
ENV npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
# Dependencies first: this layer is reused as long as the lock file does not change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=warn
COPY tsconfig.json ./
COPY src ./src
COPY templates ./templates
# koffi (the libc binding the reaper uses) ships prebuilt binaries for ~18 platforms (26 MB);
# keep the one for this platform (plus its musl twin, which koffi tries second), then prove the
# pruned tree still loads it.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=warn \
 && find dist -name '*.test.js' -delete -o -name '*.test.js.map' -delete \
 && cd node_modules/koffi/build/koffi \
 && keep="$(node -p 'process.platform + "_" + process.arch')" \
 && if [ -d "$keep" ]; then \
      for d in *; do case "$d" in "$keep"|"musl_${keep#*_}") ;; *) rm -rf "$d" ;; esac; done; \
    fi \
 && cd /build && node -e 'require("koffi")'

# ---------------------------------------------------------------------------------------------
FROM ${HAPROXY_IMAGE}
# The HAProxy images end with USER haproxy; files are installed root-owned (read-only for the
# service user) and only the runtime directory is writable.
USER root
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /build/package.json /usr/local/lib/haproxy-pilot/package.json
COPY --from=build /build/node_modules /usr/local/lib/haproxy-pilot/node_modules
COPY --from=build /build/dist/src /usr/local/lib/haproxy-pilot/dist/src
COPY --from=build /build/templates /usr/local/lib/haproxy-pilot/templates
COPY image/haproxy-pilot /usr/local/bin/haproxy-pilot
COPY image/etc/haproxy-pilot/ /etc/haproxy-pilot/
RUN set -eu; \
    chmod 0755 /usr/local/bin/haproxy-pilot; \
    mkdir -p /run/haproxy-pilot /etc/haproxy-pilot/templates; \
    chown haproxy:haproxy /run/haproxy-pilot; \
    chmod 0750 /run/haproxy-pilot; \
    node --version; \
    haproxy -v | head -n 1

ENV PILOT_RUN_DIR=/run/haproxy-pilot \
    PILOT_TEMPLATES=/etc/haproxy-pilot/templates \
    NODE_ENV=production
USER haproxy
WORKDIR /var/lib/haproxy
# 1936: stats page (basic auth) and Prometheus /metrics. Frontends come from the configuration.
EXPOSE 1936
# The HAProxy base says SIGUSR1 (soft-stop); haproxy-pilot treats SIGTERM and SIGUSR1 alike
# (graceful stop, exit 0 when clean), and SIGTERM is what orchestrators send.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["haproxy-pilot", "healthcheck"]
ENTRYPOINT ["haproxy-pilot"]
# Labels last: a new VERSION/REVISION/CREATED does not invalidate the layers above.
ARG HAPROXY_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="haproxy-pilot" \
      org.opencontainers.image.description="HAProxy with haproxy-pilot as PID 1: init, supervisor, config renderer and zero-drop reloads" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${HAPROXY_IMAGE}"
# Reset the base image's CMD (haproxy -f …): the default command is the run command.
CMD []
