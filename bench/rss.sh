#!/usr/bin/env bash
# rss.sh: client memory and throughput on a very large campaign.
#
# N no-op runs (`./aloha -c Noop --repeat=N`, each writes a tiny .sca) with
# -j J. In embedded mode simswarm is one process (engine + builder + runners
# + client), so the whole process is measured: peak RSS by /usr/bin/time -v
# (the maximum over the process and the processes it waited for, i.e. also
# any aloha) and by sampling the simswarm process's VmHWM in /proc every
# 0.5 s (its own peak). The build is cached first by a one-run campaign, so
# no compiler is counted. Baselines from this same script run: the same
# measurement for a small campaign (NSMALL runs), and xargs -P J running
# NX of the runs directly (runs/s).
# Env: N (default 100000), NSMALL (default 1000), NX (default 10000), J (default 2).
source "$(dirname "$0")/lib.sh"
N=${N:-100000}
NSMALL=${NSMALL:-1000}
NX=${NX:-10000}
J=${J:-2}
need make awk xargs seq
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install -y time)" >&2; exit 2; }
bench_init
echo "# N=$N no-op runs (NSMALL=$NSMALL, NX=$NX), J=$J"

copy_aloha "$BT/base"
build_aloha "$BT/base"
copy_aloha "$BT/proj"

t0=$(now)
(cd "$BT/base" && seq 0 $((NX - 1)) | xargs -P "$J" -I{} ./aloha -s -c Noop -r {} --repeat="$N" --result-dir="$BT/xres" >/dev/null)
XW=$(since "$t0")
XRATE=$(calc 'n/w' n="$NX" w="$XW")
rm -rf "$BT/xres"
echo "xargs -P $J, $NX direct runs: $XW s, $XRATE runs/s"

# measure LABEL RUNS: one campaign of RUNS no-op runs under /usr/bin/time -v,
# sampling the simswarm process's VmHWM. Sets RSS_TIME, RSS_HWM (KiB), WALL.
measure() {
	local label=$1 runs=$2 state=$BT/state-$1 res=$BT/res-$1
	warm_build "$BT/proj" "$state"
	local t0 tpid spid= hwm=0 v i
	t0=$(now)
	/usr/bin/time -v -o "$BT/$label.time" \
		"$SIMSWARM" run --state "$state" -q --json -C "$BT/proj" --results "$res" -j "$J" \
		-- ./aloha -c Noop --repeat="$runs" >"$BT/$label.json" 2>"$BT/$label.log" &
	tpid=$!
	# Sample until the campaign ends (bounded: at most 4 hours of 0.5 s steps).
	for ((i = 0; i < 28800; i++)); do
		kill -0 "$tpid" 2>/dev/null || break
		[ -n "$spid" ] || spid=$(pgrep -P "$tpid" 2>/dev/null | head -n1 || true)
		if [ -n "$spid" ]; then
			v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$spid/status" 2>/dev/null || true)
			[ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
		fi
		sleep 0.5
	done
	local rc=0
	wait "$tpid" || rc=$?
	WALL=$(since "$t0")
	[ $rc -eq 0 ] || { echo "PROBLEM: $label: simswarm exited with status $rc" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); tail -n 20 "$BT/$label.log" >&2; }
	check_summary "$BT/$label.json" "$BT/$label.log" "$runs" "$label" "$runs"
	RSS_TIME=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$BT/$label.time")
	RSS_HWM=$hwm
	ELAPSED=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$BT/$label.time")
	STATE_DU=$(du -sk "$state" | cut -f1)
	local n; n=$(count_files "$res" '*.sca')
	[ "$n" = "$runs" ] || { echo "PROBLEM: $label: $n of $runs .sca files in the results directory" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); }
	echo "simswarm $runs runs: wall $WALL s (time: $ELAPSED), $(calc 'n/w' n="$runs" w="$WALL") runs/s; max RSS $RSS_TIME KiB (time -v), VmHWM $RSS_HWM KiB (sampled); state dir $STATE_DU KiB"
	rm -rf "$state" "$res"
}

measure small "$NSMALL"; SR=$RSS_TIME; SH=$RSS_HWM; SW=$WALL
measure large "$N"; LR=$RSS_TIME; LH=$RSS_HWM; LW=$WALL

echo
printf '%-26s %8s %10s %14s %14s %16s\n' case runs wall_s runs_per_s maxrss_MiB vs_small/xargs
printf '%-26s %8s %10s %14s %14s %16s\n' "xargs -P $J (direct)" "$NX" "$XW" "$XRATE" "-" "1.000"
printf '%-26s %8s %10s %14s %14s %16s\n' "simswarm small campaign" "$NSMALL" "$SW" "$(calc 'n/w' n="$NSMALL" w="$SW")" "$(calc 'k/1024' k="$SR")" "1.000"
printf '%-26s %8s %10s %14s %14s %16s\n' "simswarm large campaign" "$N" "$LW" "$(calc 'n/w' n="$N" w="$LW")" "$(calc 'k/1024' k="$LR")" "rss x$(calc 'a/b' a="$LR" b="$SR")"
echo "runs/s ratio simswarm(large)/xargs: $(calc '(n/w)/x' n="$N" w="$LW" x="$XRATE")"
echo "VmHWM of the simswarm process (sampled): small $(calc 'k/1024' k="$SH") MiB, large $(calc 'k/1024' k="$LH") MiB"
bench_end
