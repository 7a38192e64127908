#!/usr/bin/env bash
# omnetpp.sh: real OMNeT++ 6.1: start-up per process, the batch rule, and
# simswarm against opp_runall -j J on the same campaigns.
#
# OMNeT++ comes from $SIMSWARM_OMNETPP (an installation's root) or the
# relocatable runtime ../shared/omnetpp/*.tar.zst beside the repository,
# unpacked into the script's temporary directory. Samples are copied there
# and built with make (MODE=release), as a user has them.
#
# 1. Start-up: wall of `prog -s -u Cmdenv -c C -r 0 --sim-time-limit=0s`
#    (NED loading, network set-up, no simulation), median of 5, for tictoc,
#    aloha and queuenet; a run's wall (median of 3); the batch size
#    simswarm's rule gives, k = ceil(0.97 x start-up / (0.03 x run)) capped at 8 (start-up
#    <= 3 % of a process), next to opp_runall's fixed 5.
# 2. Campaigns: aloha PureAlohaExperiment (42 runs) and queuenet CQN with
#    --repeat=10 (30 runs): opp_runall -j J (its default batches of 5) before
#    and after, simswarm run -j J with the build warm (a one-run campaign of
#    another config first; the timed command still starts the engine,
#    snapshots, resolves the run list). Reported: simswarm wall / mean
#    opp_runall wall (goal <= 1.0).
# Env: J (2), SIMSWARM_OMNETPP, SIMSWARM_BIN.
source "$(dirname "$0")/lib.sh"
J=${J:-2}
need make awk
bench_init
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "${SIMSWARM_OMNETPP:-}" ]; then
	OPP=$SIMSWARM_OMNETPP
else
	need zstd
	arc=$(ls "$REPO"/../shared/omnetpp/omnetpp-*.tar.zst 2>/dev/null | head -n1)
	[ -n "$arc" ] || { echo "no OMNeT++: set SIMSWARM_OMNETPP or put the runtime in ../shared/omnetpp" >&2; exit 2; }
	mkdir -p "$BT/opp"
	zstd -dc "$arc" | tar -x -C "$BT/opp"
	OPP=$(dirname "$(dirname "$(ls "$BT"/opp/*/bin/opp_run)")")
fi
export PATH=$OPP/bin:$PATH
echo "# OMNeT++: $(opp_run -v 2>/dev/null | sed -n 's/^Version: \([^,]*\),.*/\1/p')"

sample() { # sample NAME: copy samples/NAME to $BT/ws/NAME without build outputs
	mkdir -p "$BT/ws"
	tar -C "$OPP/samples" --exclude=out --exclude=results -cf - "$1" | tar -C "$BT/ws" -xf -
}
for s in tictoc aloha queueinglib queuenet; do sample $s; done
for s in tictoc aloha queueinglib; do
	(cd "$BT/ws/$s" && make MODE=release -j"$J" >/dev/null 2>&1) || { echo "make $s failed" >&2; exit 1; }
done

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
timed() { # timed N CMD...: median wall of N runs of CMD (in the current dir)
	local n=$1 i t0; shift
	for ((i = 0; i < n; i++)); do
		t0=$(now)
		"$@" >/dev/null 2>&1 || true
		since "$t0"; echo
	done | median
}

echo
printf '%-10s %-22s %10s %10s %8s %10s\n' sample config startup_s run_s rule_k opp_runall
for spec in "tictoc TicToc18 --sim-time-limit=50000s" "aloha PureAlohaExperiment" "queuenet CQN --sim-time-limit=100000s"; do
	set -- $spec
	name=$1 cfg=$2; shift 2
	cd "$BT/ws/$name"
	prog=./$name
	st=$(timed 5 "$prog" -s -u Cmdenv -c "$cfg" -r 0 --sim-time-limit=0s --result-dir="$BT/st")
	rt=$(timed 3 "$prog" -s -u Cmdenv -c "$cfg" -r 0 "$@" --result-dir="$BT/st")
	run=$(calc 'r-s>0.001?r-s:0.001' r="$rt" s="$st")
	k=$(awk -v s="$st" -v r="$run" 'BEGIN { k = 0.97 * s / (0.03 * r); k = (k == int(k)) ? k : int(k) + 1; if (k > 8) k = 8; if (k < 1) k = 1; print k }')
	printf '%-10s %-22s %10s %10s %8s %10s\n' "$name" "$cfg" "$st" "$run" "$k" 5
	cd "$REPO"
done

campaign() { # campaign LABEL SAMPLE WARMCONFIG ARGS...: opp_runall, simswarm, opp_runall
	local label=$1 name=$2 warm=$3; shift 3
	local dir=$BT/ws/$name t0 a b runs
	runs=$(cd "$dir" && ./"$name" -s "$@" -q numruns)
	cd "$dir"
	rm -rf results; t0=$(now); opp_runall -j"$J" ./"$name" "$@" >/dev/null 2>&1 || echo "PROBLEM: opp_runall $*" >&2; a=$(since "$t0")
	cd "$REPO"
	rm -rf "$dir/results"
	ss_run "warm-$label" "$BT/state-$label" -C "$dir" --results "$BT/warm-$label" -j "$J" -- ./"$name" -u Cmdenv -c "$warm" -r 0 --sim-time-limit=1s
	ss_run "$label" "$BT/state-$label" -C "$dir" --results "$BT/res-$label" -j "$J" -- ./"$name" "$@"
	local ss=$WALL
	check_summary "$BT/$label.json" "$BT/$label.log" "$runs" "$label" "$runs"
	cd "$dir"
	rm -rf results; t0=$(now); opp_runall -j"$J" ./"$name" "$@" >/dev/null 2>&1 || true; b=$(since "$t0")
	cd "$REPO"
	printf '%-9s %5s runs: opp_runall -j%s %7ss / %7ss, simswarm -j%s %7ss; simswarm / opp_runall = %s\n' \
		"$label" "$runs" "$J" "$a" "$b" "$J" "$ss" "$(calc 's/((a+b)/2)' s="$ss" a="$a" b="$b")"
}
echo
campaign aloha aloha PureAloha1 -u Cmdenv -c PureAlohaExperiment
campaign queuenet queuenet OneFifo -u Cmdenv -c CQN --sim-time-limit=100000s --repeat=10
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
bench_end
