#!/usr/bin/env bash
# pairs.sh: simswarm run against opp_runall on any OMNeT++ campaign you have
# built (INET's examples after `source setenv`, a sample, your own model),
# alternating, PAIRS times: wall time and CPU time of each, and where
# simswarm's CPU goes (the simulations' own, from its provenance records,
# against everything else: snapshot, engine, runner, result collection).
#
# Usage, in the simulation's directory, with the command as you would give
# it to opp_runall:
#
#   cd inet/examples/inet/ber && PAIRS=3 J=2 /path/to/bench/pairs.sh \
#       inet -u Cmdenv -c ber-sack-experiment
#
# The project must be built (as for opp_runall). A first simswarm campaign
# (not timed) warms the engine: snapshot stored, build made, run list known.
# Each timed simswarm campaign writes into a fresh --results directory, so
# it executes every run (results written in place count for their
# directory only); opp_runall writes into results/ there, which is moved
# aside first and put back at the end. The engine state lives in the
# script's temporary directory.
# With PROFILE=1 each timed simswarm campaign also writes a CPU profile
# (SIMSWARM_CPUPROFILE, 100 samples/s; its own cost is in the figures), and
# simswarm's own CPU is split per run into engine (NATS server and
# connections), runner, builder, Go runtime (GC) and client (cpuparts.py);
# what the profiles do not cover (other children than the simulations:
# run-list queries, compilers) is "other".
# Env: PAIRS (3), J (2), PROFILE (0), SIMSWARM_BIN.
source "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || { echo "usage: pairs.sh <simulation command as for opp_runall>" >&2; exit 2; }
PAIRS=${PAIRS:-3}
J=${J:-2}
PROFILE=${PROFILE:-0}
BENCH=$(cd "$(dirname "$0")" && pwd)
SIMDIR=$PWD
need opp_runall python3
[ "$PROFILE" = 0 ] || need go
bench_init
cd "$SIMDIR"
export SIMSWARM_STATE=$BT/state
echo "# $(pwd): $*; J=$J, $PAIRS pairs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

kept=""
if [ -e results ]; then
	kept=$BT/user-results
	mv results "$kept"
fi
restore() { rm -rf results; [ -z "$kept" ] || mv "$kept" results; }
trap 'restore; bench_cleanup' EXIT

"$SIMSWARM" run -q -j "$J" --results "$BT/warm" -- "$@" >/dev/null 2>&1 || { echo "warm-up campaign failed" >&2; exit 1; }

# timed OUT CMD...: runs CMD, prints "wall user sys" (seconds; CPU of the
# command and every process it waited for).
timed() {
	local out=$1; shift
	/usr/bin/time -f '%e %U %S' -o "$out" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
	cat "$out"
}

runs_cpu() { # runs_cpu DIR: CPU seconds of the runs, from provenance
	python3 -c 'import json,sys; print(round(sum(json.loads(l)["cpu_seconds"] for l in open(sys.argv[1])), 2))' "$1/provenance.jsonl"
}

printf '%-4s %-9s %8s %8s %8s %10s\n' pair tool wall user sys runs_cpu
sw=0 ow=0 sc=0 oc=0 rc=0 ratios=()
# one_opp / one_sw PAIR: one timed campaign of each tool; their CPU in
# PCPU (opp_runall) and SCPU (simswarm).
one_opp() {
	rm -rf results
	read -r w u s < <(timed "$BT/t" opp_runall -j"$J" "$@")
	printf '%-4s %-9s %8s %8s %8s %10s\n' "$i" opp_runall "$w" "$u" "$s" -
	ow=$(calc 'a+b' a="$ow" b="$w"); oc=$(calc 'a+u+s' a="$oc" u="$u" s="$s")
	PCPU=$(calc 'u+s' u="$u" s="$s")
}
one_sw() {
	prof=()
	[ "$PROFILE" = 0 ] || prof=(env SIMSWARM_CPUPROFILE="$BT/cpu$i.prof")
	read -r w u s < <(timed "$BT/t" ${prof[@]+"${prof[@]}"} "$SIMSWARM" run -q -j "$J" --results "$BT/r$i" -- "$@")
	r=$(runs_cpu "$BT/r$i")
	printf '%-4s %-9s %8s %8s %8s %10s\n' "$i" simswarm "$w" "$u" "$s" "$r"
	sw=$(calc 'a+b' a="$sw" b="$w"); sc=$(calc 'a+u+s' a="$sc" u="$u" s="$s"); rc=$(calc 'a+b' a="$rc" b="$r")
	SCPU=$(calc 'u+s' u="$u" s="$s")
}
# The order alternates (opp_runall first in odd pairs): a machine that
# warms up or slows down over the pairs favours neither tool.
for ((i = 1; i <= PAIRS; i++)); do
	if ((i % 2)); then one_opp "$@"; one_sw "$@"; else one_sw "$@"; one_opp "$@"; fi
	ratios+=("$(calc 'a/b' a="$SCPU" b="$PCPU")")
done
echo "CPU ratio per pair: ${ratios[*]}; median $(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}')"
echo "simswarm / opp_runall: wall $(calc 'a/b' a="$sw" b="$ow"), CPU $(calc 'a/b' a="$sc" b="$oc")"
echo "simswarm CPU per campaign: $(calc 'a/n' a="$sc" n="$PAIRS") s, of which the simulations $(calc 'a/n' a="$rc" n="$PAIRS") s and simswarm itself $(calc '(a-b)/n' a="$sc" b="$rc" n="$PAIRS") s; opp_runall $(calc 'a/n' a="$oc" n="$PAIRS") s"
if [ "$PROFILE" != 0 ]; then
	nr=$(($(wc -l <"$BT/r1/provenance.jsonl") * PAIRS))
	read -r pe pr pb pg pc pt < <(python3 "$BENCH/cpuparts.py" "$BT"/cpu*.prof)
	ms() { calc 'a*1000/n' a="$1" n="$nr"; }
	echo "simswarm's own CPU per run (ms, $nr runs): engine $(ms "$pe"), runner $(ms "$pr"), builder $(ms "$pb"), Go runtime $(ms "$pg"), client $(ms "$pc"); profiled $(ms "$pt"), other $(ms "$(calc 'a-b-t' a="$sc" b="$rc" t="$pt")")"
fi
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
