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
# MODE=sleep: the same with a process that only sleeps (a simswarm.toml
# template, `sleep SLEEP`, no build, no OMNeT++ start-up: a slot's cost is
# simswarm's alone, so 16 nodes x 16 slots fit on two cores); each try
# rewrites the toml (a comment), so its runs have new keys.
# MODE=noop: NOOP_RUNS runs that exit at once (template `: {args}`), on every node
# count: the engine's dispatch rate, runs handed out and recorded per
# second of the run phase, and CPU per run of the server, the runners
# (their own, not the simulations') and the client (/proc/PID/stat, GNU
# time). Everything shares this machine's cores, so the rate is a lower
# bound; server CPU per run gives the ceiling of a server with a core of
# its own (1 / CPU per run).
#
# Needs root (network namespaces), iproute2. Env: MODE (omnetpp), NODES ("1 2 4 8"),
# SLOTS (8), WAVES (10), SLEEP (0.5), TRIES (1: measured campaigns per node
# count, each with new run keys), B (runs per process, passed as -b to the
# measured campaigns; default: adaptive), NOOP_RUNS (10000), LOGS (a directory: keep the
# server's and runners' logs there, per node count), SIMSWARM_BIN.
source "$(dirname "$0")/cluster-lib.sh"
NODES=${NODES:-1 2 4 8}
SLOTS=${SLOTS:-8}
WAVES=${WAVES:-10}
SLEEP=${SLEEP:-0.5}
TRIES=${TRIES:-1}
MODE=${MODE:-omnetpp}
NOOP_RUNS=${NOOP_RUNS:-10000}
case $MODE in omnetpp | sleep | noop) ;; *) echo "MODE must be omnetpp, sleep or noop, not '$MODE'" >&2; exit 2 ;; esac
B=${B:-}
bflag=()
[ -n "$B" ] && bflag=(-b "$B")
max=0
for n in $NODES; do [ "$n" -gt "$max" ] && max=$n; done
names=(server builder)
for ((i = 1; i <= max; i++)); do names+=("r$i"); done
cl_init "${names[@]}"
echo "# mode $MODE; nodes: $NODES; $SLOTS slots per node; $WAVES waves of ${SLEEP}s runs; batch ${B:-adaptive}; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# template R LABEL: the sleep/noop project with R runs; LABEL (a comment)
# makes its snapshot, so its run keys, new.
template() {
	local cmd=": {args} {resultdir}"
	[ "$MODE" = sleep ] && cmd="sleep {args}; : {resultdir}"
	printf '# %s\n[build]\ncommand = ""\n\n[run]\ncommand = "%s"\nrepeat = %d\n' "$2" "$cmd" "$1" >"$BT/proj/simswarm.toml"
}
# campaign_args R TRY: the measured campaign's arguments: R runs, new keys
# for every try.
campaign_args() {
	if [ "$MODE" = omnetpp ]; then
		# Run keys of every try differ (--repeat), the filter keeps R runs.
		args=(-C "$BT/proj" -- ./aloha -c Sleepy --repeat=$(($1 + $2 - 1)) -r "0..$(($1 - 1))" --sleep="$SLEEP")
	else
		template "$1" "try $2"
		args=(-C "$BT/proj" -- "$SLEEP")
	fi
}
if [ "$MODE" = omnetpp ]; then copy_aloha "$BT/proj"; else mkdir -p "$BT/proj"; fi
rows=()

for n in $NODES; do
	slots=$((n * SLOTS))
	R=$((slots * WAVES))
	[ "$MODE" = noop ] && R=$NOOP_RUNS
	echo "## $n node(s), $slots slots, $R runs"
	cl_cluster "$n" "$SLOTS" || { BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); continue; }
	logs=()
	for ((i = 1; i <= n; i++)); do logs+=("$CL_DIR/r$i.log"); done

	# 1. warm-up: build, list, trees on every node (at most 3 campaigns).
	wr=$((2 * slots))
	for ((w = 1; w <= 3; w++)); do
		if [ "$MODE" = omnetpp ]; then
			cl_run "warm-$n-$w" -C "$BT/proj" --results "$BT/res-warm-$n-$w" -- ./aloha -c Sleepy --repeat=$((wr + w - 1)) --sleep="$SLEEP"
		else
			template $((wr + w - 1)) "warm-up $n $w"
			cl_run "warm-$n-$w" -C "$BT/proj" --results "$BT/res-warm-$n-$w" -- "$SLEEP"
		fi
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
		campaign_args "$R" "$t"
		# 2. cache the run list.
		cl_run "list-$n-$t" --dry-run "${args[@]}"
		# 3. the measured campaign.
		label=run-$n-$t
		load=$(cut -d' ' -f1 /proc/loadavg)
		s0=$(cl_cpu_ms "$CL_SERVER_PID")
		r0=0
		for p in "${CL_RUNNER_PIDS[@]}"; do r0=$((r0 + $(cl_cpu_ms "$p"))); done
		cl_run "$label" --results "$BT/res-$n-$t" ${bflag[@]+"${bflag[@]}"} "${args[@]}"
		s1=$(cl_cpu_ms "$CL_SERVER_PID")
		r1=0
		for p in "${CL_RUNNER_PIDS[@]}"; do r1=$((r1 + $(cl_cpu_ms "$p"))); done
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
		client=$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$BT/$label.time" 2>/dev/null || echo 0)
		echo "#   CPU per run: server $(calc '(b-a)/r' a="$s0" b="$s1" r="$R") ms, runners (own) $(calc '(b-a)/r' a="$r0" b="$r1" r="$R") ms, client $(calc 'c/r' c="$client" r="$R") ms; server busy $(calc 'p>0?(b-a)/10/p:0' a="$s0" b="$s1" p="$span") % of one core during the run phase"
		if [ "$MODE" = noop ]; then
			echo "#   dispatch: $(calc 'p>0?r/p:0' r="$R" p="$span") runs/s over the run phase, $(calc 'w>0?r/w:0' r="$R" w="$sw") runs/s over the client's wall; a server core of its own would hand out $(calc 'b>a?1000*r/(b-a):0' a="$s0" b="$s1" r="$R") runs/s at this CPU per run"
		fi
		nfiles=$R
		[ "$MODE" = omnetpp ] && nfiles=$(count_files "$BT/res-$n-$t" 'Sleepy-*.sca')
		if [ "$nfiles" != "$R" ]; then
			BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
			echo "PROBLEM: $label: $nfiles result files, want $R" >&2
		fi
		if [ "$MODE" = noop ]; then
			eff_c=$(calc 'w>0?r/w:0' r="$R" w="$sw")
			eff_r=$(calc 'p>0?r/p:0' r="$R" p="$span")
		fi
		rows+=("$(printf '%5s %6s %6s %8s %9s %9s %10s %10s %6s' "$n" "$slots" "$R" "$ideal" "$sw" "$span" "$eff_c" "$eff_r" "$load")")
	done
	[ -n "${LOGS:-}" ] && mkdir -p "$LOGS/$n" && cp "${logs[@]}" "$CL_DIR/server.log" "$LOGS/$n/" 2>/dev/null
	cl_teardown
done

echo
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$MODE" = noop ]; then
	printf '%5s %6s %6s %8s %9s %9s %10s %10s %6s\n' nodes slots runs - wall_s phase_s runs/s_wall runs/s_phase load1
else
	printf '%5s %6s %6s %8s %9s %9s %10s %10s %6s\n' nodes slots runs ideal_s wall_s phase_s eff_wall eff_phase load1
fi
for r in "${rows[@]}"; do echo "$r"; done
bench_end
