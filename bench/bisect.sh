#!/usr/bin/env bash
# bisect.sh: simswarm bisect of BENCH_COMMITS (default 64) commits of the
# bundled example on the cluster test lab (a server, a builder and three
# runners of two slots, each in its own network namespace), with --slots 6
# against --slots 1 (a sequential bisect), each on a fresh cluster so that
# neither finds the other's builds. Reported per bisect: rounds, commits
# tested, builds and the client's wall time. BENCH_SLEEP=1: each run waits
# 2 s instead of computing (the Sleepy config), as long runs on a cluster
# of many cores do, where this lab's two shared cores cannot show it.
#
# Needs root (network namespaces) and iproute2.
set -euo pipefail
cd "$(dirname "$0")/.."
SIMSWARM_BENCH_BISECT=1 BENCH_COMMITS=${BENCH_COMMITS:-64} BENCH_SLEEP=${BENCH_SLEEP:-} \
	go test -count=1 -v -timeout 30m -run '^TestBenchBisect$' ./cmd/simswarm | grep 'bisect_test.go.*commits, --slots\|FAIL\|PROBLEM' || true
