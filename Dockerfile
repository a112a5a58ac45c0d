# syntax=docker/dockerfile:1
# Warden image: build with the full Node 24 image (it carries python3, make and g++ for the re2
# native addon), run on node:24-slim as a non-root user. Nothing is written outside /tmp at run
# time, so the container works with readOnlyRootFilesystem: true (mount an emptyDir at /tmp for
# file audit sinks or Unix sockets).

FROM node:24-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/prune-native-build.sh ./scripts/
# The dev dependencies go, and so do re2's compile leftovers (object files, C++ sources): only
# its re2.node binary is loaded at run time.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && sh scripts/prune-native-build.sh

FROM node:24-bookworm-slim AS runtime
# No WARDEN_* variable here: each overrides its key in whatever config is mounted (README
# "Environment overrides"), so an image default would silently win over the operator's file. The
# config's own defaults apply (log.level info, loopback listeners: in a pod the app reaches the
# sidecar on the pod's loopback); set the variables at `docker run -e` / in the pod spec instead.
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root proto ./proto
COPY --chown=root:root policies ./policies
COPY --chown=root:root deploy/local ./deploy/local
# The image's files belong to root and are read-only for the process; it runs as `node` (uid 1000).
USER 1000:1000
EXPOSE 8700 8701 8702
# The admin listener of the embedded default, or the one WARDEN_ADMIN_LISTEN names: a config that
# puts it elsewhere is run with that variable set (docker run -e), or the check would fail.
# (Kubernetes ignores HEALTHCHECK: the pod's probes ask the admin port themselves.)
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD ["node", "-e", "fetch('http://'+((process.env.WARDEN_ADMIN_LISTEN||'').trim()||'127.0.0.1:8702')+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["serve", "--config", "deploy/local/warden.yaml"]
