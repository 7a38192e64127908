#!/usr/bin/env bash
# scaleout.sh: how close a cluster gets to perfect parallelism as runner
# nodes are added.
#
# For each node count n in NODES (default 1 2 4 8): a fresh cluster (server,
# builder, n runner nodes of SLOTS slots each, every one in its own network
# namespace on a bridge; the client in the root namespace), then
#   1. a warm-up campaign of 2*n*SLOTS Sleepy runs: builds the project,
#      resolves a run list and materialises the tree on every node;
#   2. `--dry-run` of the measured campaign: its run list gets cached;
#   3. the measured campaign: R = n*SLOTS*WAVES runs that sleep SLEEP s
#      (`./aloha -c Sleepy --repeat=R --sleep=SLEEP`, no CPU; try t of
#      TRIES uses --repeat=R+t-1 -r 0..R-1: the same R runs, new run keys).
# ideal = R*SLEEP/(n*SLOTS). Reported: ideal / client wall (the whole
# `simswarm run`: snapshot, cached build and list, submit, runs, results)
# and ideal / run phase (first simulation process start to last process
# end, from the runners' -v logs). Goal: >= 0.9 at 8 nodes.
#
# Needs root (network namespaces), iproute2. Env: NODES ("1 2 4 8"),
# SLOTS (8), WAVES (10), SLEEP (0.5), TRIES (1: measured campaigns per node
# count, each with new run keys), B (runs per process, passed as -b to the
# measured campaigns; default: adaptive), LOGS (a directory: keep the
# server's and runners' logs there, per node count), SIMSWARM_BIN.
source "$(dirname "$0")/cluster-lib.sh"
NODES=${NODES:-1 2 4 8}
SLOTS=${SLOTS:-8}
WAVES=${WAVES:-10}
SLEEP=${SLEEP:-0.5}
TRIES=${TRIES:-1}
B=${B:-}
bflag=()
[ -n "$B" ] && bflag=(-b "$B")
max=0
for n in $NODES; do [ "$n" -gt "$max" ] && max=$n; done
names=(server builder)
for ((i = 1; i <= max; i++)); do names+=("r$i"); done
cl_init "${names[@]}"
echo "# nodes: $NODES; $SLOTS slots per node; $WAVES waves of ${SLEEP}s runs; batch ${B:-adaptive}; load average $(cut -d' ' -f1-3 /proc/loadavg)"

copy_aloha "$BT/proj"
rows=()

for n in $NODES; do
	slots=$((n * SLOTS))
	R=$((slots * WAVES))
	echo "## $n node(s), $slots slots, $R runs"
	cl_cluster "$n" "$SLOTS" || { BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); continue; }
	logs=()
	for ((i = 1; i <= n; i++)); do logs+=("$CL_DIR/r$i.log"); done

	# 1. warm-up: build, list, trees on every node (at most 3 campaigns).
	wr=$((2 * slots))
	for ((w = 1; w <= 3; w++)); do
		cl_run "warm-$n-$w" -C "$BT/proj" --results "$BT/res-warm-$n-$w" -- ./aloha -c Sleepy --repeat=$((wr + w - 1)) --sleep="$SLEEP"
		check_summary "$BT/warm-$n-$w.json" "$BT/warm-$n-$w.log" $((wr + w - 1)) "warm-up $w" $((wr + w - 1))
		missing=0
		for l in "${logs[@]}"; do grep -qF 'msg="tree ready"' "$l" || missing=$((missing + 1)); done
		echo "#   warm-up $w: wall $WALL s, hosts: $(cl_hosts "$BT/warm-$n-$w.json")"
		[ $missing = 0 ] && break
		echo "#   $missing node(s) have no tree yet"
	done
	if [ $missing != 0 ]; then
		BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
		echo "PROBLEM: $n nodes: $missing node(s) never materialised the tree during warm-up" >&2
	fi

	for ((t = 1; t <= TRIES; t++)); do
		# Run keys of every try differ (--repeat), the filter keeps R runs.
		args=(-C "$BT/proj" -- ./aloha -c Sleepy --repeat=$((R + t - 1)) -r "0..$((R - 1))" --sleep="$SLEEP")
		# 2. cache the run list.
		cl_run "list-$n-$t" --dry-run "${args[@]}"
		# 3. the measured campaign.
		label=run-$n-$t
		load=$(cut -d' ' -f1 /proc/loadavg)
		cl_run "$label" --results "$BT/res-$n-$t" ${bflag[@]+"${bflag[@]}"} "${args[@]}"
		check_summary "$BT/$label.json" "$BT/$label.log" "$R" "$label" "$R"
		camp=$(cl_json_str "$BT/$label.json" campaign)
		read -r lo hi procs runs busy < <(cl_proc_span "$camp" "${logs[@]}")
		span=$(calc 'b-a' a="$lo" b="$hi")
		sw=$(calc w w="$(json_field "$BT/$label.json" wall_seconds)")
		ideal=$(calc 'r*s/k' r="$R" s="$SLEEP" k="$slots")
		eff_c=$(calc 'w>0?i/w:0' i="$ideal" w="$sw")
		eff_r=$(calc 'w>0?i/w:0' i="$ideal" w="$span")
		# before the first process / after the last one, as the client sees it
		pre=$(calc 'l-a' l="$lo" a="$T0")
		post=$(calc 'b-h' b="$T1" h="$hi")
		echo "#   $label: client wall $WALL s (summary $sw s), run phase $span s ($procs processes, $runs runs), first process $pre s after the command started, summary $post s after the last one ended"
		echo "#   hosts: $(cl_hosts "$BT/$label.json")"
		# slot time outside simulation processes during the run phase, per run
		echo "#   slots busy in processes $(calc 'p>0?b/(p*k)*100:0' b="$busy" p="$span" k="$slots") % of the run phase; idle slot time per run $(calc '(p*k-b)/r*1000' b="$busy" p="$span" k="$slots" r="$R") ms; mean process wall $(calc 'n>0?b/n*1000:0' b="$busy" n="$procs") ms"
		echo "#   runs per process:processes: $(cl_batch_hist "$camp" "${logs[@]}")"
		nfiles=$(count_files "$BT/res-$n-$t" 'Sleepy-*.sca')
		if [ "$nfiles" != "$R" ]; then
			BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
			echo "PROBLEM: $label: $nfiles result files, want $R" >&2
		fi
		rows+=("$(printf '%5s %6s %6s %8s %9s %9s %10s %10s %6s' "$n" "$slots" "$R" "$ideal" "$sw" "$span" "$eff_c" "$eff_r" "$load")")
	done
	[ -n "${LOGS:-}" ] && mkdir -p "$LOGS/$n" && cp "${logs[@]}" "$CL_DIR/server.log" "$LOGS/$n/" 2>/dev/null
	cl_teardown
done

echo
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%5s %6s %6s %8s %9s %9s %10s %10s %6s\n' nodes slots runs ideal_s wall_s phase_s eff_wall eff_phase load1
for r in "${rows[@]}"; do echo "$r"; done
bench_end
