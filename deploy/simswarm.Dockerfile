# syntax=docker/dockerfile:1
#
# simswarm: the static binary (client, engine, dashboard), nothing else.
# The stack runs the engine and the dashboard on it; runtime.Dockerfile
# copies the same binary into the simulator runtime image.
#
# Build from the repository root (docs/deploy-swarm.md):
#   docker build -f deploy/simswarm.Dockerfile -t "$REGISTRY/simswarm:$TAG" .
# simswarm.Dockerfile.dockerignore beside this file keeps the context to the
# Go sources.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# The toolchain is the image's own: go.mod asks for exactly this version.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags='-s -w' -o /out/simswarm ./cmd/simswarm \
 && /out/simswarm version

# Alpine for its busybox: the dashboard's health check reads /proc/net/tcp
# with sh and grep. The binary itself needs no libc.
FROM alpine:3.24.1
# /data is the engine's state directory, owned by the service user, so that
# a named volume mounted there starts out writable by it.
RUN addgroup -S -g 10001 simswarm \
 && adduser -S -D -H -u 10001 -G simswarm -h /data -s /sbin/nologin simswarm \
 && mkdir -p /data && chown simswarm:simswarm /data && chmod 0700 /data
COPY --from=build /out/simswarm /usr/local/bin/simswarm
USER 10001:10001
WORKDIR /data
# No credentials in the image: the stack mounts the Docker secret
# simswarm_creds at /run/secrets/simswarm_creds.
EXPOSE 4222 9181
CMD ["simswarm", "--help"]
