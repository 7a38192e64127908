#!/usr/bin/env bash
# Waits until every service of a stack runs all its tasks, healthy
# (docs/deploy-swarm.md, step 5): Swarm counts a task with a health check
# as running once it has passed it. Prints each service as it gets there;
# on timeout names those that did not, with what Swarm says about their
# tasks, and exits 1.
#
#   deploy/wait-stack.sh [STACK [TIMEOUT_SECONDS]]     (simswarm, 300)
set -uo pipefail

stack=${1:-simswarm}
timeout=${2:-300}
start=$(date +%s)
declare -A ready=()

while :; do
  lines=$(docker stack services "$stack" --format '{{.Name}} {{.Replicas}}' 2>&1) || {
    echo "wait-stack: $lines" >&2
    exit 1
  }
  if [ -z "$lines" ]; then
    echo "wait-stack: no stack $stack (docker stack deploy first)" >&2
    exit 1
  fi
  waiting=()
  while read -r name replicas; do
    # "2/2", or "1/1 (max 1 per node)": running/desired.
    counts=${replicas%% *}
    running=${counts%/*} desired=${counts#*/}
    if [ "$running" = "$desired" ]; then
      if [ -z "${ready[$name]:-}" ]; then
        ready[$name]=1
        echo "wait-stack: $name $counts after $(($(date +%s) - start))s" >&2
      fi
    else
      unset "ready[$name]"
      waiting+=("$name")
    fi
  done <<<"$lines"
  if [ ${#waiting[@]} -eq 0 ]; then
    echo "wait-stack: $stack ready after $(($(date +%s) - start))s" >&2
    exit 0
  fi
  if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
    for name in "${waiting[@]}"; do
      echo "wait-stack: $name is not running after ${timeout}s:" >&2
      docker service ps --no-trunc --filter desired-state=running \
        --format '  {{.Name}} on "{{.Node}}": {{.CurrentState}} {{.Error}}' "$name" >&2
    done
    exit 1
  fi
  sleep 2
done
