#!/usr/bin/env bash
# slurm.sh: simswarm run --slurm against the embedded engine with the same
# slots. A real Slurm (internal/slurm/slurmtest: munged, slurmctld, three
# one-core slurmd nodes in network namespaces) runs BENCH_RUNS (default
# 1000) short template runs through three pilots; the embedded engine runs
# the same campaign with -j 3. Reported: each one's command time and run
# phase (first run start to last run end, from results/provenance.jsonl),
# their ratio (goal <= 1.3 once pilots run), and the time from the
# command's start to the first run's start (the build, the run list, sbatch
# and Slurm's scheduling of the first pilot).
#
# Needs root, slurm-wlm and munge (as .ci/run installs them), iproute2.
set -euo pipefail
cd "$(dirname "$0")/.."
SIMSWARM_BENCH_SLURM=1 BENCH_RUNS=${BENCH_RUNS:-1000} \
	go test -count=1 -v -timeout 30m -run '^TestBenchSlurm$' ./cmd/simswarm | grep -v '^ok\|^PASS\|^=== RUN\|^--- PASS'
