# simswarm: the static binary (client, engine, dashboard) on Debian 12.
# The stack runs the engine and the dashboard on it; runtime.Dockerfile
# copies the same binary into the simulator runtime image.
#
# deploy/build-images.sh builds it (docs/deploy-swarm.md, step 3). By hand,
# from the repository root:
#   docker build -f deploy/simswarm.Dockerfile -t "$REGISTRY/simswarm:$TAG" .
# simswarm.Dockerfile.dockerignore beside this file keeps the context to the
# Go sources (BuildKit reads it; the legacy builder reads only a
# .dockerignore at the top of the context, which build-images.sh writes).
#
# No `# syntax=` line and no RUN --mount: the Dockerfile frontend built
# into the engine reads it, so nothing is pulled but the base images, and
# the legacy builder (Debian's docker.io 20.10 without BuildKit) builds it
# too.

# The base images, as build arguments: a site without Docker Hub names its
# own (build-images.sh passes SIMSWARM_BASE_IMAGE for both). GO_IMAGE only
# compiles; with SIMSWARM_BINARY it needs no Go, only a shell.
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG BASE_IMAGE=debian:12.13-slim

FROM ${GO_IMAGE} AS build
# A simswarm binary in the build context (a path relative to it), built
# elsewhere with CGO_ENABLED=0 (build-images.sh builds it on the host,
# where Go's build cache makes that take seconds). Empty: compile the
# context's sources here, from a cold cache (minutes).
ARG SIMSWARM_BINARY=
WORKDIR /src
# The toolchain is the image's own: go.mod asks for exactly this version.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
COPY . .
RUN if [ -n "$SIMSWARM_BINARY" ]; then \
      install -D -m 0755 "$SIMSWARM_BINARY" /out/simswarm; \
    else \
      go build -ldflags='-s -w' -o /out/simswarm ./cmd/simswarm; \
    fi \
 && /out/simswarm version

# Debian, as the runtime image: nodes store the base layers once, and the
# dashboard's health check has sh and grep. The binary needs no libc.
FROM ${BASE_IMAGE}
# /data is the engine's state directory, owned by the service user, so that
# a named volume mounted there starts out writable by it.
RUN groupadd --system --gid 10001 simswarm \
 && useradd --system --uid 10001 --gid simswarm --no-create-home --home-dir /data \
      --shell /usr/sbin/nologin simswarm \
 && install -d -o simswarm -g simswarm -m 0700 /data
COPY --from=build /out/simswarm /usr/local/bin/simswarm
USER 10001:10001
WORKDIR /data
# No credentials in the image: the stack mounts the Docker secret
# simswarm_creds at /run/secrets/simswarm_creds.
EXPOSE 4222 9181
CMD ["simswarm", "--help"]
