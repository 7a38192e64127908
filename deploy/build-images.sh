#!/usr/bin/env bash
# Builds simswarm's images (docs/deploy-swarm.md, step 3), tagged as
# deploy/stack.yml names them:
#
#   SIMSWARM_TAG=$TAG deploy/build-images.sh
#
# Environment:
#   SIMSWARM_TAG              the images' tag (required; the stack's too)
#   SIMSWARM_REGISTRY         prefix of the images' names (default
#                             127.0.0.1:5000, as in the stack)
#   SIMSWARM_IMAGES           which to build, of: simswarm runtime base ns3
#                             (default "simswarm runtime"); the runtimes need
#                             the simswarm image of the same tag, ns3 is built
#                             on base (which it builds too)
#   SIMSWARM_BASE_IMAGE       the Debian 12 image to build on (default the
#                             public debian:12.13-slim); packages it already
#                             has are not downloaded, so a local base that has
#                             them builds offline
#   SIMSWARM_OMNETPP_ARCHIVE  a local OMNeT++ release archive (.tgz, .tar.gz,
#                             .tar.xz, .tar.zst) or directory for the runtime
#                             image, instead of a download: a source release is
#                             built, a tree with bin/opp_run (built on this base)
#                             is taken as it is
#   SIMSWARM_BINARY           a simswarm binary to put in the images; default:
#                             built here with `go build` (CGO_ENABLED=0) when Go
#                             is installed, else compiled in the golang image
#   SIMSWARM_BUILD_NETWORK    passed to docker build --network (none: prove
#                             that the build downloads nothing)
#   DOCKER_BUILDKIT           as for docker build: 1 BuildKit, 0 the legacy
#                             builder; both build these Dockerfiles
#
# Each image is built from a context this script assembles in a temporary
# directory (only the files that image needs), so the legacy builder,
# which ignores <Dockerfile>.dockerignore, sends no more than BuildKit.
set -euo pipefail

die() { echo "build-images.sh: $*" >&2; exit 2; }

deploy=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$deploy")
: "${SIMSWARM_TAG:?set SIMSWARM_TAG to the tag to build (the one deploy/stack.yml deploys)}"
registry=${SIMSWARM_REGISTRY:-127.0.0.1:5000}
tag=$SIMSWARM_TAG
base=${SIMSWARM_BASE_IMAGE:-}
images=${SIMSWARM_IMAGES:-simswarm runtime}
for i in $images; do
  case $i in simswarm | runtime | ns3 | base) ;; *) die "SIMSWARM_IMAGES: unknown image $i (want simswarm, runtime, ns3 or base)" ;; esac
done
command -v docker >/dev/null || die "docker (the Docker CLI) is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/simswarm-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

build=(docker build)
if [ -n "${SIMSWARM_BUILD_NETWORK:-}" ]; then
  build+=(--network "$SIMSWARM_BUILD_NETWORK")
fi
if [ -n "$base" ]; then
  docker image inspect "$base" >/dev/null 2>&1 || die "SIMSWARM_BASE_IMAGE $base: no such image on this Docker engine"
  build+=(--build-arg BASE_IMAGE="$base")
fi

has() { case " $images " in *" $1 "*) return 0 ;; esac; return 1; }

if has simswarm; then
  ctx="$work/simswarm"
  mkdir -p "$ctx/bin"
  cp "$deploy/simswarm.Dockerfile.dockerignore" "$ctx/.dockerignore"
  args=()
  if [ -n "${SIMSWARM_BINARY:-}" ]; then
    [ -x "$SIMSWARM_BINARY" ] || die "SIMSWARM_BINARY $SIMSWARM_BINARY: not an executable file"
    cp "$SIMSWARM_BINARY" "$ctx/bin/simswarm"
  elif command -v go >/dev/null; then
    echo "build-images.sh: go build ./cmd/simswarm (CGO_ENABLED=0)" >&2
    (cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/bin/simswarm" ./cmd/simswarm)
  fi
  if [ -x "$ctx/bin/simswarm" ]; then
    args+=(--build-arg SIMSWARM_BINARY=bin/simswarm)
    # Only a shell is needed to copy it: no Go image.
    if [ -n "$base" ]; then args+=(--build-arg GO_IMAGE="$base"); fi
  else
    (cd "$repo" && tar -cf - --exclude='*_test.go' --exclude=testdata go.mod go.sum ./*.go cmd internal) | tar -xf - -C "$ctx"
  fi
  "${build[@]}" "${args[@]}" -f "$deploy/simswarm.Dockerfile" -t "$registry/simswarm:$tag" "$ctx"
fi

runtime() { # target image-name [context]
  local target=$1 name=$2 ctx="$work/runtime-$1" extra=()
  mkdir -p "$ctx"
  cp "$deploy/runtime.Dockerfile.dockerignore" "$ctx/.dockerignore"
  if [ "$target" = omnetpp ] && [ -n "${SIMSWARM_OMNETPP_ARCHIVE:-}" ]; then
    local src=$SIMSWARM_OMNETPP_ARCHIVE
    mkdir -p "$ctx/omnetpp"
    if [ -d "$src" ]; then
      cp -a "$src/." "$ctx/omnetpp/"
    elif [ -f "$src" ]; then
      case $src in
        *.tar.zst | *.tzst) zstd -dc "$src" | tar -xf - --strip-components=1 -C "$ctx/omnetpp" ;;
        *.tgz | *.tar.gz | *.tar.xz | *.tar) tar -xf "$src" --strip-components=1 -C "$ctx/omnetpp" ;;
        *) die "SIMSWARM_OMNETPP_ARCHIVE $src: not a .tgz, .tar.gz, .tar.xz, .tar.zst or directory" ;;
      esac
    else
      die "SIMSWARM_OMNETPP_ARCHIVE $src: no such file or directory"
    fi
    [ -f "$ctx/omnetpp/Version" ] || die "SIMSWARM_OMNETPP_ARCHIVE $src: not an OMNeT++ release (no Version file at its top)"
    local version
    version=$(sed -n '1s/^omnetpp-//p' "$ctx/omnetpp/Version")
    [ -n "$version" ] || die "SIMSWARM_OMNETPP_ARCHIVE $src: its Version file names no omnetpp-X.Y release"
    extra+=(--build-arg OMNETPP_VERSION="$version")
  fi
  "${build[@]}" "${extra[@]}" --target "$target" --build-arg SIMSWARM_IMAGE="$registry/simswarm:$tag" \
    -f "$deploy/runtime.Dockerfile" -t "$registry/$name:$tag" "$ctx"
}

if has runtime; then runtime omnetpp simswarm-runtime; fi
if has base || has ns3; then runtime base simswarm-runtime-base; fi
if has ns3; then
  ctx="$work/runtime-ns3"
  mkdir -p "$ctx"
  cp "$deploy/runtime-ns3.Dockerfile.dockerignore" "$ctx/.dockerignore"
  "${build[@]}" --build-arg RUNTIME_IMAGE="$registry/simswarm-runtime-base:$tag" \
    -f "$deploy/runtime-ns3.Dockerfile" -t "$registry/simswarm-runtime-ns3:$tag" "$ctx"
fi
