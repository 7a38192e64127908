#!/usr/bin/env bash
# efficiency.sh: how close simswarm gets to perfect parallelism on real runs.
#
# The PureAlohaExperiment sweep (42 runs of ~0.15 s CPU each). Each run is
# first started directly, one after another (`./aloha -s -c
# PureAlohaExperiment -r $i --result-dir=DIR`); ideal = (sum of those wall
# times) / J. Then simswarm runs the campaign with -j J, once with a warm
# build (built beforehand by a one-run campaign of another config) and once
# cold (fresh state: engine start, snapshot, build, run list included).
# Reported: ideal/actual (1.0 = perfect). Env: J (default 2), CONFIG
# (default PureAlohaExperiment).
source "$(dirname "$0")/lib.sh"
J=${J:-2}
CONFIG=${CONFIG:-PureAlohaExperiment}
need make awk
bench_init

copy_aloha "$BT/base"
build_aloha "$BT/base"
copy_aloha "$BT/proj"
runs=$(cd "$BT/base" && ./aloha -s -c "$CONFIG" -q runnumbers)
nruns=$(echo $runs | wc -w)
echo "# $CONFIG: $nruns runs, J=$J"

seq_run() {
	local out=$BT/seqres-$1 r t0 t sum=0 min= max=0
	for r in $runs; do
		t0=$(now)
		(cd "$BT/base" && ./aloha -s -c "$CONFIG" -r "$r" --result-dir="$out" >/dev/null)
		t=$(since "$t0")
		sum=$(calc 's+t' s="$sum" t="$t")
		min=$(calc '(m==""||t<m)?t:m' m="$min" t="$t")
		max=$(calc 't>m?t:m' m="$max" t="$t")
	done
	SUM=$sum
	echo "sequential direct runs ($1): sum $sum s, min $min s, max $max s per run"
	rm -rf "$out"
}

seq_run before; S1=$SUM

# warm: the build is cached first, by a campaign of another config.
warm_build "$BT/proj" "$BT/state-warm"
ss_run warm "$BT/state-warm" -C "$BT/proj" --results "$BT/res-warm" -j "$J" -- ./aloha -c "$CONFIG"
WARM=$WALL; WARMJ=$(json_field "$BT/warm.json" wall_seconds)
check_summary "$BT/warm.json" "$BT/warm.log" "$nruns" warm "$nruns"
echo "simswarm -j $J, warm build:  $WARM s (summary wall_seconds $WARMJ)"

ss_run cold "$BT/state-cold" -C "$BT/proj" --results "$BT/res-cold" -j "$J" -- ./aloha -c "$CONFIG"
COLD=$WALL; COLDJ=$(json_field "$BT/cold.json" wall_seconds)
check_summary "$BT/cold.json" "$BT/cold.log" "$nruns" cold "$nruns"
echo "simswarm -j $J, cold:        $COLD s (summary wall_seconds $COLDJ)"

seq_run after; S2=$SUM

SUM=$(calc '(a+b)/2' a="$S1" b="$S2")
IDEAL=$(calc 's/j' s="$SUM" j="$J")
echo
echo "sum of single-run walls (mean of before/after): $SUM s; ideal with $J slots: $IDEAL s"
printf '%-26s %9s %12s\n' case wall_s ideal/actual
printf '%-26s %9s %12s\n' "simswarm warm build" "$WARM" "$(calc 'i/w' i="$IDEAL" w="$WARM")"
printf '%-26s %9s %12s\n' "simswarm cold" "$COLD" "$(calc 'i/w' i="$IDEAL" w="$COLD")"
bench_end
