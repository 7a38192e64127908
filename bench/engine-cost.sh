#!/usr/bin/env bash
# engine-cost.sh: what one run costs the engine (messages, bytes, CPU), and
# from that, where the engine becomes the limit of a large cluster.
#
# A fresh cluster: server (with --monitor), builder and 2 runner nodes of
# SLOTS slots, each in its own network namespace on a bridge; the client in
# the root namespace. After a warm-up campaign (build, trees on both nodes),
# two campaigns of N runs that do nothing (`./aloha -c Sleepy --sleep=0`,
# each with its own run keys and its run list cached by a --dry-run first):
# one with `-b 1` (one process per run), one with adaptive batching.
# Around each: the server's /varz (in_msgs, out_msgs, in_bytes, out_bytes;
# the idle rate of heartbeats, measured for IDLE s before, is subtracted),
# the server's and runners' CPU (/proc/PID/stat utime+stime; the runners'
# children, the simulations, separately) and the client's CPU (GNU time).
#
# Server capacity: "C measured" is the highest message rate of the two
# campaigns (the server shares this machine's cores with runners,
# simulations and client, so it is a lower bound unless the server was near
# one core); "one core" assumes the server (or the one client following the
# campaign) gets a core of its own and keeps its measured CPU per run (an
# extrapolation). The capacity model printed at the end gives, for clusters
# up to 64 nodes x 64 slots, the run duration below which the engine rather
# than the slots sets the pace.
#
# Needs root (network namespaces), iproute2, curl, GNU time. Env: N (2000),
# SLOTS (2), IDLE (5), SIMSWARM_BIN.
source "$(dirname "$0")/cluster-lib.sh"
N=${N:-2000}
SLOTS=${SLOTS:-2}
IDLE=${IDLE:-5}
need curl
[ ${#TIMEX[@]} -gt 0 ] || { echo "GNU time (/usr/bin/time) missing: apt-get install -y time" >&2; exit 2; }
cl_init server builder r1 r2
echo "# N=$N runs, 2 runner nodes x $SLOTS slots; load average $(cut -d' ' -f1-3 /proc/loadavg)"
copy_aloha "$BT/proj"

cl_cluster 2 "$SLOTS" --monitor "$(cl_addr server):8222" || exit 1
VARZ=http://$(cl_addr server):8222/varz
# varz: "in_msgs out_msgs in_bytes out_bytes" of the server now.
varz() {
	curl -sf --max-time 5 "$VARZ" | tr -d ' \n' | awk '{
		n = split("in_msgs out_msgs in_bytes out_bytes", k, " ")
		for (i = 1; i <= n; i++) { v = "?"; if (match($0, "\"" k[i] "\":[0-9]+")) v = substr($0, RSTART + length(k[i]) + 3, RLENGTH - length(k[i]) - 3)
		  printf "%s%s", v, (i < n ? " " : "\n") } }'
}
# children_ms PID: CPU (ms) of the waited-for children of a live process.
children_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}
runners_ms() { local s=0 p; for p in "${CL_RUNNER_PIDS[@]}"; do s=$((s + $(cl_cpu_ms "$p"))); done; echo $s; }
runners_child_ms() { local s=0 p; for p in "${CL_RUNNER_PIDS[@]}"; do s=$((s + $(children_ms "$p"))); done; echo $s; }
logs=("$CL_DIR/r1.log" "$CL_DIR/r2.log")

varz >/dev/null || { echo "PROBLEM: no /varz at $VARZ" >&2; exit 1; }

# Warm-up: build, run list, trees on both nodes (at most 3 campaigns).
for ((w = 1; w <= 3; w++)); do
	cl_run "warm-$w" -C "$BT/proj" --results "$BT/res-warm-$w" -- ./aloha -c Sleepy --repeat=$((4 * SLOTS + w)) --sleep=0
	check_summary "$BT/warm-$w.json" "$BT/warm-$w.log" $((4 * SLOTS + w)) "warm-up $w"
	grep -qF 'msg="tree ready"' "${logs[0]}" && grep -qF 'msg="tree ready"' "${logs[1]}" && break
	[ $w = 3 ] && echo "# note: a node has no tree after the warm-up; the first campaign includes fetching it"
done

declare -A R
k=0
for mode in b1 adaptive; do
	k=$((k + 1))
	args=(-C "$BT/proj" -- ./aloha -c Sleepy --repeat=$((N + k)) -r "0..$((N - 1))" --sleep=0)
	bflag=()
	[ $mode = b1 ] && bflag=(-b 1)
	cl_run "list-$mode" --dry-run "${args[@]}"
	# idle rate (heartbeats)
	read -r i0 o0 ib0 ob0 < <(varz); t0=$(now)
	sleep "$IDLE"
	read -r i1 o1 ib1 ob1 < <(varz); ti=$(since "$t0")
	idle_in=$(calc '(b-a)/t' a="$i0" b="$i1" t="$ti") idle_out=$(calc '(b-a)/t' a="$o0" b="$o1" t="$ti")
	idle_ib=$(calc '(b-a)/t' a="$ib0" b="$ib1" t="$ti") idle_ob=$(calc '(b-a)/t' a="$ob0" b="$ob1" t="$ti")
	# the campaign
	read -r i0 o0 ib0 ob0 < <(varz)
	s0=$(cl_cpu_ms "$CL_SERVER_PID") r0=$(runners_ms) c0=$(runners_child_ms)
	cl_run "$mode" --results "$BT/res-$mode" ${bflag[@]+"${bflag[@]}"} "${args[@]}"
	s1=$(cl_cpu_ms "$CL_SERVER_PID") r1=$(runners_ms) c1=$(runners_child_ms)
	read -r i1 o1 ib1 ob1 < <(varz)
	check_summary "$BT/$mode.json" "$BT/$mode.log" "$N" "$mode" "$N"
	camp=$(cl_json_str "$BT/$mode.json" campaign)
	read -r lo hi procs nruns _ < <(cl_proc_span "$camp" "${logs[@]}")
	w=$WALL
	din=$(calc '(b-a)-r*w' a="$i0" b="$i1" r="$idle_in" w="$w") dout=$(calc '(b-a)-r*w' a="$o0" b="$o1" r="$idle_out" w="$w")
	dib=$(calc '(b-a)-r*w' a="$ib0" b="$ib1" r="$idle_ib" w="$w") dob=$(calc '(b-a)-r*w' a="$ob0" b="$ob1" r="$idle_ob" w="$w")
	client_ms=$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$BT/$mode.time")
	R[$mode,wall]=$w R[$mode,procs]=$procs
	R[$mode,in]=$(calc 'd/n' d="$din" n="$N") R[$mode,out]=$(calc 'd/n' d="$dout" n="$N")
	R[$mode,inb]=$(calc 'd/n' d="$dib" n="$N") R[$mode,outb]=$(calc 'd/n' d="$dob" n="$N")
	R[$mode,srv]=$(calc '(b-a)/n' a="$s0" b="$s1" n="$N") R[$mode,cli]=$(calc 'c/n' c="$client_ms" n="$N")
	R[$mode,run]=$(calc '(b-a)/n' a="$r0" b="$r1" n="$N") R[$mode,sim]=$(calc '(b-a)/n' a="$c0" b="$c1" n="$N")
	R[$mode,rate]=$(calc '(i+o)/w' i="$din" o="$dout" w="$w")
	R[$mode,util]=$(calc '(b-a)/1000/w' a="$s0" b="$s1" w="$w")
	R[$mode,percore]=$(calc 'b>a?(i+o)/((b-a)/1000):0' i="$din" o="$dout" a="$s0" b="$s1")
	R[$mode,runs_s]=$(calc 'n/w' n="$N" w="$w")
	echo "# $mode: wall $w s ($(calc 'n/w' n="$N" w="$w") runs/s), $procs processes; idle rate in/out $idle_in/$idle_out msgs/s (subtracted);" \
		"server CPU $(calc '(b-a)/1000' a="$s0" b="$s1") s ($(calc 'u*100' u="${R[$mode,util]}") % of one core); hosts: $(cl_hosts "$BT/$mode.json")"
done

echo
printf '%-34s %12s %12s\n' "per run" "-b 1" adaptive
row() { printf '%-34s %12s %12s\n' "$1" "${R[b1,$2]}" "${R[adaptive,$2]}"; }
row "campaign wall s" wall
row "runs/s" runs_s
row "simulation processes" procs
row "server in msgs" in
row "server out msgs" out
row "server in bytes" inb
row "server out bytes" outb
row "server CPU ms" srv
row "client CPU ms (GNU time)" cli
row "runner CPU ms (runner processes)" run
row "simulation CPU ms (runners' children)" sim
row "server msgs/s (in+out), measured" rate
row "server CPU, fraction of one core" util
row "server msgs per CPU-second" percore

# Capacity model: S slots busy with runs of d seconds start S/d runs/s; the
# server handles m msgs per run (in+out) and can pass C msgs/s, so it is the
# limit when S/d*m > C, i.e. for runs shorter than d* = S*m/C. C measured =
# the higher of the two campaigns' rates; one core = the server spending c ms
# of CPU per run on a core of its own: d* = S*c/1000; the same for the one
# client that follows the campaign (its CPU per run).
Cm=$(calc 'a>b?a:b' a="${R[b1,rate]}" b="${R[adaptive,rate]}")
echo
echo "# capacity model: shortest run duration (s) before the server is the limit"
echo "# C measured = $Cm msgs/s, with the server at $(calc 'a>b?a:b' a="${R[b1,util]}" b="${R[adaptive,util]}") of one core"
echo "#   (it shares this machine's cores with runners, simulations and client: a lower bound unless near 1)"
echo "# one core: the server (c_ms per run) or the client (client CPU per run) on a core of its own (extrapolated)"
printf '%-10s %-9s %9s %8s %14s %14s %14s\n' cluster mode msgs/run c_ms "d* C measured" "d* one core" "d* client core"
for shape in "8 8" "16 16" "32 32" "64 64"; do
	read -r nn ss <<<"$shape"
	S=$((nn * ss))
	for mode in b1 adaptive; do
		m=$(calc 'a+b' a="${R[$mode,in]}" b="${R[$mode,out]}")
		printf '%-10s %-9s %9s %8s %14s %14s %14s\n' "${nn}x${ss}" "$mode" "$m" "${R[$mode,srv]}" \
			"$(calc 's*m/c' s="$S" m="$m" c="$Cm")" "$(calc 's*c/1000' s="$S" c="${R[$mode,srv]}")" \
			"$(calc 's*c/1000' s="$S" c="${R[$mode,cli]}")"
	done
done
bench_end
