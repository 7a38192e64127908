#!/usr/bin/env bash
# overhead.sh: per-run overhead of simswarm on runs that do nothing.
#
# N runs of `./aloha -c Noop` (each exits at once and writes a tiny .sca)
# with J slots, simswarm vs. xargs -P J starting the same program once per
# run (`./aloha -s -c Noop -r $i --result-dir=DIR`, console to /dev/null).
# simswarm is measured four ways, each with a fresh state directory:
#   cold: total wall of one `simswarm run` (engine start, snapshot, build, run list, runs)
#   warm: the same after the build was cached by a one-run campaign
# each with adaptive batching (-b 0, the default) and with -b 1 (one process
# per run, like xargs). xargs is timed before and after; its mean is the
# baseline. Env: N (default 5000), J (default 2).
source "$(dirname "$0")/lib.sh"
N=${N:-5000}
J=${J:-2}
need make awk xargs seq
bench_init
echo "# N=$N runs of ./aloha -c Noop, J=$J"

copy_aloha "$BT/base"
build_aloha "$BT/base"
copy_aloha "$BT/proj"
last=$((N - 1))

xargs_run() {
	local out=$BT/xres-$1 t0
	t0=$(now)
	(cd "$BT/base" && seq 0 "$last" | timex "$BT/xargs-$1.cpu" xargs -P "$J" -I{} ./aloha -s -c Noop -r {} --result-dir="$out" >/dev/null)
	WALL=$(since "$t0")
	CPU=$(cpu_of "$BT/xargs-$1.cpu")
	local n; n=$(count_files "$out" '*.sca')
	[ "$n" = "$N" ] || { echo "PROBLEM: xargs wrote $n of $N .sca files" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); }
	rm -rf "$out"
}

# simswarm_case LABEL WARM(0/1) BATCH: sets $WALL (whole command), $JWALL
# (the summary's wall_seconds) and $CPU (CPU seconds, with the runs).
simswarm_case() {
	local label=$1 warm=$2 batch=$3 state=$BT/state-$1 res=$BT/res-$1
	if [ "$warm" = 1 ]; then
		warm_build "$BT/proj" "$state"
	fi
	SS_PREFIX=(${TIMEX[@]+"${TIMEX[@]}" "$BT/$label.cpu"})
	ss_run "$label" "$state" -C "$BT/proj" --results "$res" -j "$J" -b "$batch" \
		-- ./aloha -c Noop -r "0..$last"
	SS_PREFIX=()
	CPU=$(cpu_of "$BT/$label.cpu")
	JWALL=$(json_field "$BT/$label.json" wall_seconds)
	check_summary "$BT/$label.json" "$BT/$label.log" "$N" "$label" "$N"
	local n; n=$(count_files "$res" '*.sca')
	[ "$n" = "$N" ] || { echo "PROBLEM: $label: $n of $N .sca files in the results directory" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); }
	rm -rf "$state" "$res" "$BT/warm-res-state-$label"
}

xargs_run 1; X1=$WALL XC1=$CPU
echo "xargs -P $J (before):            $X1 s, CPU $XC1 s"
simswarm_case cold-b0 0 0; C0=$WALL C0J=$JWALL C0C=$CPU
echo "simswarm cold, adaptive (-b 0):  $C0 s (summary wall_seconds $C0J), CPU $C0C s"
simswarm_case cold-b1 0 1; C1=$WALL C1J=$JWALL C1C=$CPU
echo "simswarm cold, -b 1:             $C1 s (summary wall_seconds $C1J), CPU $C1C s"
simswarm_case warm-b0 1 0; W0=$WALL W0J=$JWALL W0C=$CPU
echo "simswarm warm, adaptive (-b 0):  $W0 s (summary wall_seconds $W0J), CPU $W0C s"
simswarm_case warm-b1 1 1; W1=$WALL W1J=$JWALL W1C=$CPU
echo "simswarm warm, -b 1:             $W1 s (summary wall_seconds $W1J), CPU $W1C s"
xargs_run 2; X2=$WALL XC2=$CPU
echo "xargs -P $J (after):             $X2 s, CPU $XC2 s"

X=$(calc '(a+b)/2' a="$X1" b="$X2")
XC=$(calc '(a+b)/2' a="$XC1" b="$XC2")
echo
echo "baseline xargs mean: $X s, CPU $XC s ($(calc 'n/x' n="$N" x="$X") runs/s, $(calc '1000*x*j/n' x="$X" j="$J" n="$N") ms per run per slot)"
printf '%-26s %8s %10s %12s %8s %12s\n' case wall_s runs_per_s wall_ratio cpu_s cpu_ratio
for c in "cold adaptive:$C0:$C0C" "cold -b 1:$C1:$C1C" "warm adaptive:$W0:$W0C" "warm -b 1:$W1:$W1C"; do
	IFS=: read -r name w cpu <<<"$c"
	printf '%-26s %8s %10s %12s %8s %12s\n' "simswarm $name" "$w" "$(calc 'n/w' n="$N" w="$w")" "$(calc 'w/x' w="$w" x="$X")" "$cpu" "$(calc 'x>0?c/x:0' c="$cpu" x="$XC")"
done
echo "(ratios: simswarm / mean of the two xargs runs; CPU includes the aloha processes)"
bench_end
