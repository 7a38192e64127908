# The simulator runtime: one image, and so ONE toolchain, for the builder, the
# runners and the distcc compile servers. distcc sends preprocessed sources
# to other nodes' compilers; objects from another compiler version would be
# linked together silently, so every compiler in the cluster is this image's.
#
# deploy/build-images.sh builds it after the simswarm image
# (docs/deploy-swarm.md, step 3). By hand, from the repository root:
#
#   docker build -f deploy/runtime.Dockerfile \
#     --build-arg SIMSWARM_IMAGE="$REGISTRY/simswarm:$TAG" \
#     -t "$REGISTRY/simswarm-runtime:$TAG" .
#
# Targets (--target):
#   omnetpp  the default (last stage): OMNeT++ without GUI, from omnetpp/ in
#            the build context when there is one (a release's source tree,
#            or a tree already built on this base), else downloaded:
#            OMNETPP_VERSION and OMNETPP_SHA1 choose the release
#   base     the toolchain and simswarm alone; FROM this (or the image
#            above) to bring your own simulator: docs/deploy-swarm.md.
#            runtime-ns3.Dockerfile adds Debian's ns-3 to it. (Not a stage
#            here: the legacy builder builds every stage before its target,
#            and ns-3's packages would be downloaded for every image.)
#
# The context holds nothing else (runtime.Dockerfile.dockerignore), no
# credentials are baked in (the stack mounts the Docker secret
# simswarm_creds at run time), and, as in simswarm.Dockerfile, no `# syntax=`
# line or RUN --mount: BuildKit and the legacy builder both build it.

# The simswarm image built from deploy/simswarm.Dockerfile, by its full name
# and tag. Required: the runtime runs exactly the binary the engine runs.
ARG SIMSWARM_IMAGE
# Debian 12 (bookworm): the release whose compilers, distcc, ccache and ns-3
# the project's tests run with. A local image of it serves as well (one made
# with debootstrap, for instance): packages it already has are not
# downloaded, so a base that has them all builds without a network.
ARG BASE_IMAGE=debian:12.13-slim
# The OMNeT++ release, and the SHA-1 of its omnetpp-$OMNETPP_VERSION-core.tgz
# as the OMNeT++ download page gives it: change both together. With an
# omnetpp/ tree in the context, OMNETPP_VERSION names it (build-images.sh
# reads it from the tree's Version file).
ARG OMNETPP_VERSION=6.1.0
ARG OMNETPP_SHA1=4e643421035b322d91b9bfbb273c2ee165af82a0

FROM ${SIMSWARM_IMAGE} AS simswarm

FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# apt-need installs those of its packages the image lacks, and touches no
# network when it lacks none (a prepared local base builds offline).
RUN printf '%s\n' '#!/bin/sh' 'set -eu' 'missing=' \
      'for p in "$@"; do dpkg-query -W -f "\${Status}" "$p" 2>/dev/null | grep -q " installed$" || missing="$missing $p"; done' \
      '[ -n "$missing" ] || exit 0' \
      'echo "apt-need: installing$missing"' \
      'apt-get update' \
      'apt-get install -y --no-install-recommends $missing' \
      'rm -rf /var/lib/apt/lists/*' > /usr/local/sbin/apt-need \
 && chmod 0755 /usr/local/sbin/apt-need
# g++/gcc/make: builds; distcc and ccache: distributed, cached builds (the
# builder) and the compile server (distccd); python3 and perl: OMNeT++'s
# tools (opp_makemake, opp_featuretool); libsqlite3-0: a prebuilt OMNeT++
# linked against Debian's SQLite; tini: reaps the orphans simulations
# leave behind. update-distcc-symlinks lists the compilers distccd may run.
RUN apt-need g++ gcc make distcc ccache tini python3 perl libxml2-dev zlib1g-dev libsqlite3-0 \
 && update-distcc-symlinks
# The service user, and the directories the stack mounts volumes on (a new
# named volume takes the ownership of the directory it is mounted on).
RUN groupadd --system --gid 10001 simswarm \
 && useradd --system --uid 10001 --gid simswarm --create-home --home-dir /home/simswarm \
      --shell /usr/sbin/nologin simswarm \
 && install -d -o simswarm -g simswarm -m 0750 /var/lib/simswarm \
      /var/lib/simswarm/workspaces /var/lib/simswarm/ccache /var/lib/simswarm/runner
COPY --from=simswarm /usr/local/bin/simswarm /usr/local/bin/simswarm
RUN simswarm version
WORKDIR /home/simswarm
EXPOSE 3632
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["simswarm", "--help"]

# OMNeT++ without Qtenv, OSG or osgEarth, built with this image's compiler:
# from the context's omnetpp/ (a source tree is built; a tree that has
# bin/opp_run is taken as it is: it must have been built on this base, as
# ../shared/omnetpp's is), else from the release's "core" archive (sources
# without the IDE), downloaded and checked.
FROM base AS omnetpp-build
ARG OMNETPP_VERSION
ARG OMNETPP_SHA1
USER root
WORKDIR /opt/omnetpp
COPY . /tmp/context/
RUN if [ -d /tmp/context/omnetpp ]; then \
      cp -a /tmp/context/omnetpp/. /opt/omnetpp/; \
    else \
      apt-need curl ca-certificates \
      && curl -fsSL -o /tmp/omnetpp.tgz \
        "https://github.com/omnetpp/omnetpp/releases/download/omnetpp-${OMNETPP_VERSION}/omnetpp-${OMNETPP_VERSION}-core.tgz" \
      && echo "${OMNETPP_SHA1}  /tmp/omnetpp.tgz" | sha1sum -c - \
      && tar -xzf /tmp/omnetpp.tgz --strip-components=1 -C /opt/omnetpp \
      && rm /tmp/omnetpp.tgz; \
    fi \
 && rm -rf /tmp/context
ENV PATH=/opt/omnetpp/bin:$PATH
RUN if [ ! -x bin/opp_run ]; then \
      apt-need bison flex \
      && source ./setenv -q \
      && ./configure WITH_QTENV=no WITH_OSG=no WITH_OSGEARTH=no PREFER_CLANG=no PREFER_LLD=no \
      && make -j"$(nproc)" MODE=release base \
      && rm -rf out doc; \
    fi

FROM base AS omnetpp
ARG OMNETPP_VERSION
COPY --from=omnetpp-build /opt/omnetpp /opt/omnetpp
# What OMNeT++'s setenv would set.
ENV PATH=/opt/omnetpp/bin:$PATH \
    LD_LIBRARY_PATH=/opt/omnetpp/lib \
    __omnetpp_root_dir=/opt/omnetpp \
    SIMSWARM_TOOLCHAIN=omnetpp-${OMNETPP_VERSION}
# Every library opp_run needs is there.
RUN ldd /opt/omnetpp/bin/opp_run | { ! grep 'not found'; }
USER 10001:10001
