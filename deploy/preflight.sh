#!/usr/bin/env bash
# Checks, before `docker stack deploy`, what deploy/stack.yml needs and
# docker would not say plainly (docs/deploy-swarm.md, step 5): the tag, the
# secrets, the engine's node label and, for --resolve-image never, the
# images on this node. Each missing piece is one line on stderr; exit 2.
#
#   SIMSWARM_TAG=$TAG [SIMSWARM_REGISTRY=...] [RESOLVE_IMAGE=never] deploy/preflight.sh
set -uo pipefail

bad=0
fail() { echo "preflight: $*" >&2; bad=1; }

if [ -z "${SIMSWARM_TAG:-}" ]; then
  fail "SIMSWARM_TAG is not set: set it to the tag the images were built with (step 0's TAG)"
fi
if ! docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null | grep -qx true; then
  echo "preflight: this Docker engine is not a swarm manager (step 1: docker swarm init)" >&2
  exit 2
fi
for secret in simswarm_creds simswarm_dashboard_token; do
  docker secret inspect "$secret" >/dev/null 2>&1 ||
    fail "the secret $secret does not exist: create it (step 4: docker secret create $secret FILE)"
done
labelled=0
for node in $(docker node ls --filter role=manager -q); do
  if [ "$(docker node inspect --format '{{index .Spec.Labels "simswarm.engine"}}' "$node")" = true ]; then
    labelled=1
  fi
done
if [ "$labelled" = 0 ]; then
  fail "no manager has the label simswarm.engine=true, so the engine and the builder could run nowhere (step 1: docker node update --label-add simswarm.engine=true NODE)"
fi
if [ "${RESOLVE_IMAGE:-}" = never ] && [ -n "${SIMSWARM_TAG:-}" ]; then
  registry=${SIMSWARM_REGISTRY:-127.0.0.1:5000}
  for image in simswarm "${SIMSWARM_RUNTIME:-simswarm-runtime}"; do
    docker image inspect "$registry/$image:$SIMSWARM_TAG" >/dev/null 2>&1 ||
      fail "no image $registry/$image:$SIMSWARM_TAG on this node, and --resolve-image never pulls none (step 3)"
  done
fi
if [ "$bad" = 1 ]; then exit 2; fi
echo "preflight: ready to deploy $SIMSWARM_TAG" >&2
