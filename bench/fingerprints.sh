#!/bin/sh
# bench/fingerprints.sh: a fingerprint suite of N short tests (real OMNeT++'s
# aloha, PureAlohaExperiment runs with varied time limits) through
# simswarm fingerprints on the embedded engine, against the same test
# commands run one after another and with xargs -P (as many as slots).
#
#   OMNETPP=/path/to/omnetpp-6.1 N=1000 JOBS=2 bench/fingerprints.sh
#
# Prints wall times and the ratios simswarm/sequential and simswarm/xargs.
set -eu
: "${OMNETPP:?set OMNETPP to an unpacked OMNeT++ 6.1 (see ../shared/omnetpp/README.md)}"
N=${N:-1000}
JOBS=${JOBS:-$(nproc)}
SIMSWARM=${SIMSWARM:-simswarm}
export PATH="$OMNETPP/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$OMNETPP/samples/aloha" "$work/aloha"
(cd "$work/aloha" && make MODE=release -j"$JOBS" >/dev/null)
mkdir "$work/tests"
suite="$work/tests/bench.csv"
echo "# working directory, command line arguments, simulation time limit, fingerprint, expected result, tags" >"$suite"
i=0
while [ "$i" -lt "$N" ]; do
	run=$((i % 42))
	limit=$((60 + i / 42))
	echo "/aloha/, -f omnetpp.ini -c PureAlohaExperiment -r $run, ${limit}s, 0000-0000/tplx, FAIL, bench" >>"$suite"
	i=$((i + 1))
done
# The command each test runs, as simswarm runs it (minus --result-dir).
grep -v '^#' "$suite" | while IFS=, read -r _ args limit _ _ _; do
	echo "./aloha -u Cmdenv $args --sim-time-limit=$(echo $limit) --fingerprint=0000-0000/tplx --cpu-time-limit=60s --vector-recording=false --scalar-recording=true --result-dir=$work/direct"
done >"$work/commands"

now() { date +%s.%N; }
cd "$work/aloha"
t0=$(now)
sh "$work/commands" >/dev/null 2>&1
t1=$(now)
xargs -P "$JOBS" -I{} sh -c '{}' <"$work/commands" >/dev/null 2>&1
t2=$(now)
cd "$work/tests"
"$SIMSWARM" fingerprints --state "$work/state" -j "$JOBS" -q bench.csv >"$work/table" 2>"$work/stderr" || true
t3=$(now)
tail -1 "$work/table"
"$SIMSWARM" fingerprints --state "$work/state" -j "$JOBS" -q bench.csv >"$work/table2" 2>/dev/null || true
t4=$(now)
tail -1 "$work/table2"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v n="$N" -v j="$JOBS" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
	seq = b - a; xa = c - b; sw = d - c; re = e - d
	printf "%d tests, %d slots, load %s\n", n, j, l
	printf "sequential          %7.1fs\n", seq
	printf "xargs -P %d          %7.1fs\n", j, xa
	printf "simswarm (cold)     %7.1fs  (build included)  ratio to sequential %.2f, to xargs %.2f\n", sw, sw / seq, sw / xa
	printf "simswarm (rerun)    %7.1fs  (verdicts reused)\n", re
}'
