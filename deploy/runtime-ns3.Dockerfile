# The simulator runtime with Debian's ns-3 (ns-3.37 on bookworm) instead of
# OMNeT++: examples/ns3-wifi builds and runs on it. Built FROM the base
# target of runtime.Dockerfile of the same tag, so its compiler is the one
# of every other runtime image (deploy/build-images.sh, SIMSWARM_IMAGES=ns3):
#
#   docker build --build-arg RUNTIME_IMAGE="$REGISTRY/simswarm-runtime-base:$TAG" \
#     -t "$REGISTRY/simswarm-runtime-ns3:$TAG" - < deploy/runtime-ns3.Dockerfile
#
# Nothing comes from a build context (runtime-ns3.Dockerfile.dockerignore).

# The base image built from runtime.Dockerfile --target base, by its full
# name and tag. Required.
ARG RUNTIME_IMAGE
FROM ${RUNTIME_IMAGE}
USER root
RUN apt-need libns3-dev
# Part of every artifact key the builder computes: a new simulator is a new
# build.
ENV SIMSWARM_TOOLCHAIN=ns3-debian12
USER 10001:10001
