# Shared helpers for the cluster benchmarks (scaleout.sh, artifact.sh,
# engine-cost.sh). Sourced, not run. Builds on lib.sh (bench_init, copy_aloha,
# calc, json_field, check_summary, ...).
#
# A "lab" is a Linux bridge plus one network namespace per node, joined to
# the bridge by a veth pair, each node with its own address 10.A.B.n/24 in a
# /24 that nothing on this machine uses yet; the root namespace is 10.A.B.254
# on the bridge and runs the client (`simswarm run`). simswarm server,
# builder and runners run inside the namespaces. Everything the lab made (its
# processes, namespaces, veths, bridge, $BT) is removed on exit, whatever the
# exit. Needs root and iproute2; nothing outside the lab is ever targeted.
#
# Names: namespaces ssb<id>-<node>, bridge ssb<id>b, veths ssb<id>a<i> (root
# side) and ssb<id>n<i> (node side); <id> is this script's pid mod 100000.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 2

CL_NODES=()        # node names, in address order (.1, .2, ...)
CL_MADE_NS=()      # namespaces this script created
CL_MADE_VETH=()    # root-side veths this script created
CL_MADE_BR=        # the bridge, once created
CL_PIDS=()         # simswarm processes started in the lab (alive or not)
CL_GEN=0           # cluster generation (one per cl_cluster)
CL_CLIENT=         # pid of the running client command (cl_run), if any
CL_HELPERS=()      # background helpers (samplers): killed first on exit
# Time limit (seconds) of every client command, and of waits for a log line.
CL_RUN_TIMEOUT=${CL_RUN_TIMEOUT:-900}
CL_WAIT=${CL_WAIT:-60}

# cl_init NODE...: bench_init (build simswarm into $BT), then the lab with
# one namespace per NODE.
cl_init() {
	if [ "$(id -u)" != 0 ]; then
		echo "$(basename "$0"): network namespaces need root" >&2
		exit 2
	fi
	need ip awk timeout
	bench_init
	trap cl_cleanup EXIT
	CL_ID=$(($$ % 100000))
	CL_PFX=ssb$CL_ID
	CL_SUBNET=$(cl_free_subnet) || { echo "no free 10.x.y.0/24 found for the lab" >&2; exit 2; }
	CL_BR=${CL_PFX}b
	ip link add "$CL_BR" type bridge
	CL_MADE_BR=$CL_BR
	ip addr add "$CL_SUBNET.254/24" dev "$CL_BR"
	ip link set "$CL_BR" up
	local i=0 name ns outer inner
	for name in "$@"; do
		ns=$CL_PFX-$name
		outer=${CL_PFX}a$i inner=${CL_PFX}n$i
		ip netns add "$ns"
		CL_MADE_NS+=("$ns")
		ip link add "$outer" type veth peer name "$inner"
		CL_MADE_VETH+=("$outer")
		ip link set "$inner" netns "$ns"
		ip link set "$outer" master "$CL_BR"
		ip link set "$outer" up
		ip netns exec "$ns" ip addr add "$CL_SUBNET.$((i + 1))/24" dev "$inner"
		ip netns exec "$ns" ip link set "$inner" up
		ip netns exec "$ns" ip link set lo up
		CL_NODES+=("$name")
		i=$((i + 1))
	done
	echo "# lab: bridge $CL_BR $CL_SUBNET.254/24, nodes: $(for n in "${CL_NODES[@]}"; do printf '%s=%s ' "$n" "$(cl_addr "$n")"; done)"
}

# cl_free_subnet: a 10.A.B prefix (A in 150..199) that no address or route
# of the root namespace covers.
cl_free_subnet() {
	local nets k a b
	nets=$( { ip -4 -o addr show | awk '{ print $4 }'; ip -4 route show | awk '$1 != "default" { print $1 }'; } )
	for k in $(seq 0 199); do
		a=$((150 + ($$ + k) % 50)) b=$(((($$ / 50) + k * 7) % 250 + 1))
		if ! echo "$nets" | awk -v c="10.$a.$b.0" '
			function ip2n(s,  p) { split(s, p, "."); return ((p[1] * 256 + p[2]) * 256 + p[3]) * 256 + p[4] }
			NF { split($1, q, "/"); len = (q[2] == "" ? 32 : q[2]); if (q[1] !~ /\./) next
			     size = 2 ^ (32 - len); lo = int(ip2n(q[1]) / size) * size; n = ip2n(c)
			     # overlap of [lo, lo+size) with [n, n+256)
			     if (lo < n + 256 && n < lo + size) hit = 1 }
			END { exit !hit }'; then
			echo "10.$a.$b"
			return 0
		fi
	done
	return 1
}

cl_idx() {
	local i
	for i in "${!CL_NODES[@]}"; do
		[ "${CL_NODES[$i]}" = "$1" ] && { echo "$i"; return 0; }
	done
	echo "no lab node $1" >&2
	return 1
}
cl_ns() { echo "$CL_PFX-$1"; }
cl_addr() { echo "$CL_SUBNET.$(($(cl_idx "$1") + 1))"; }
# cl_outer NODE / cl_inner NODE: the root-side / node-side veth of a node.
cl_outer() { echo "${CL_PFX}a$(cl_idx "$1")"; }
cl_inner() { echo "${CL_PFX}n$(cl_idx "$1")"; }
# cl_rx NODE: bytes the node's interface has received (read inside its namespace).
cl_rx() { ip netns exec "$(cl_ns "$1")" cat "/sys/class/net/$(cl_inner "$1")/statistics/rx_bytes"; }
cl_tx() { ip netns exec "$(cl_ns "$1")" cat "/sys/class/net/$(cl_inner "$1")/statistics/tx_bytes"; }

# cl_start NODE LOG ARGS...: start `simswarm ARGS` in NODE's namespace, its
# output to LOG; its pid (simswarm's own: ip netns exec execs it) in $CL_LAST.
cl_start() {
	local node=$1 log=$2; shift 2
	ip netns exec "$(cl_ns "$node")" "$SIMSWARM" "$@" >"$log" 2>&1 &
	CL_LAST=$!
	CL_PIDS+=("$CL_LAST")
}

# cl_wait_log LOG TEXT [SECONDS]: wait until LOG contains TEXT (fixed
# string); fails (PROBLEM) after SECONDS (default $CL_WAIT).
cl_wait_log() {
	local log=$1 text=$2 secs=${3:-$CL_WAIT} i
	for ((i = 0; i < secs * 10; i++)); do
		grep -qF -- "$text" "$log" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "PROBLEM: $log: no \"$text\" within ${secs}s; its end:" >&2
	tail -n 20 "$log" >&2
	return 1
}

# cl_stop PID...: SIGTERM, then SIGKILL after 5 s, and reap. Only pids this
# script started are ever given.
cl_stop() {
	local p i alive
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# cl_cluster NRUNNERS SLOTS [SERVER ARGS...]: a fresh cluster: the server on
# node "server" (new state directory), the builder on node "builder",
# runners on nodes r1..rN, each with its own cache, all logging with -v into
# $CL_DIR. Sets CL_URL, CL_CREDS, CL_SERVER_PID, CL_RUNNER_PIDS, CL_DIR.
cl_cluster() {
	local n=$1 slots=$2 i; shift 2
	cl_teardown
	CL_GEN=$((CL_GEN + 1))
	CL_DIR=${BT:?}/cluster$CL_GEN
	mkdir -p "$CL_DIR/state" "$CL_DIR/ws"
	CL_URL=nats://$(cl_addr server):4222
	CL_CREDS=$CL_DIR/state/client.creds
	cl_start server "$CL_DIR/server.log" server --listen "$(cl_addr server):4222" --state "$CL_DIR/state" "$@"
	CL_SERVER_PID=$CL_LAST
	cl_wait_log "$CL_DIR/server.log" listening || return 1
	cl_start builder "$CL_DIR/builder.log" builder --server "$CL_URL" --creds "$CL_CREDS" --dir "$CL_DIR/ws" -v
	CL_BUILDER_PID=$CL_LAST
	CL_RUNNER_PIDS=()
	for ((i = 1; i <= n; i++)); do
		cl_start "r$i" "$CL_DIR/r$i.log" runner --server "$CL_URL" --creds "$CL_CREDS" --slots "$slots" \
			--name "r$i" --cache "$CL_DIR/cache-r$i" -v
		CL_RUNNER_PIDS+=("$CL_LAST")
	done
	for ((i = 1; i <= n; i++)); do
		cl_wait_log "$CL_DIR/r$i.log" "connected to" || return 1
	done
}

# cl_teardown: stop the current cluster's processes (runners, builder,
# server), and anything still running in the lab's namespaces.
cl_teardown() {
	if [ ${#CL_PIDS[@]} -gt 0 ]; then
		local rev=() i
		for ((i = ${#CL_PIDS[@]} - 1; i >= 0; i--)); do rev+=("${CL_PIDS[$i]}"); done
		cl_stop "${rev[@]}"
	fi
	CL_PIDS=()
	cl_kill_ns_pids
}

# cl_kill_ns_pids: SIGKILL whatever still runs inside the lab's own
# namespaces (simulations a killed runner left behind).
cl_kill_ns_pids() {
	local ns p
	for ns in ${CL_MADE_NS[@]+"${CL_MADE_NS[@]}"}; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
	done
}

cl_cleanup() {
	local rc=$?
	set +e
	local p
	for p in ${CL_HELPERS[@]+"${CL_HELPERS[@]}"}; do kill "$p" 2>/dev/null; done
	[ -n "${CL_CLIENT:-}" ] && cl_stop "$CL_CLIENT"
	cl_teardown
	local ns v
	for ns in ${CL_MADE_NS[@]+"${CL_MADE_NS[@]}"}; do ip netns del "$ns" 2>/dev/null; done
	for v in ${CL_MADE_VETH[@]+"${CL_MADE_VETH[@]}"}; do
		ip link show "$v" >/dev/null 2>&1 && ip link del "$v" 2>/dev/null
	done
	[ -n "$CL_MADE_BR" ] && ip link del "$CL_MADE_BR" 2>/dev/null
	CL_MADE_NS=() CL_MADE_VETH=() CL_MADE_BR=
	(exit $rc)
	bench_cleanup
}

# cl_run LABEL ARGS...: `simswarm run` in the root namespace against the
# current cluster, with -q --json and a time limit of $CL_RUN_TIMEOUT s; the
# summary to $BT/LABEL.json, stderr to $BT/LABEL.log, wall seconds to $WALL,
# start and end (epoch seconds) to $T0 and $T1, and with GNU time the CPU
# of the client to $BT/LABEL.time. Never fails the script; a non-zero exit is
# a PROBLEM.
cl_run() {
	local label=$1 rc=0; shift
	local pre=()
	: "${BT:?}"
	[ ${#TIMEX[@]} -gt 0 ] && pre=("${TIMEX[@]}" "$BT/$label.time")
	T0=$(now)
	# In the background and waited for, so that a signal to this script
	# runs its traps at once; timeout is outermost: a signal to it reaches
	# its whole process group (GNU time and simswarm), so cl_cleanup stops
	# the client by signalling $CL_CLIENT.
	timeout "$CL_RUN_TIMEOUT" ${pre[@]+"${pre[@]}"} "$SIMSWARM" run --server "$CL_URL" --creds "$CL_CREDS" -q --json "$@" \
		>"$BT/$label.json" 2>"$BT/$label.log" &
	CL_CLIENT=$!
	wait "$CL_CLIENT" || rc=$?
	CL_CLIENT=
	T1=$(now)
	WALL=$(calc 'b-a' a="$T0" b="$T1")
	if [ $rc -ne 0 ]; then
		BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
		local why="exited with status $rc"
		[ $rc = 124 ] && why="timed out after ${CL_RUN_TIMEOUT}s"
		echo "PROBLEM: $label: simswarm run $why: simswarm run -q --json $*" >&2
		tail -n 20 "$BT/$label.log" >&2
	fi
	return 0
}

# cl_hosts JSON: the "hosts" object of a summary, as "name=count ..." sorted.
cl_hosts() {
	tr -d '\n ' <"$1" | sed -n 's/.*"hosts":{\([^}]*\)}.*/\1/p' | tr ',' '\n' | tr -d '"' | tr ':' '=' | sort -V | tr '\n' ' '
}

# AWK_TIME: awk functions for the runners' logs: ts(line) is the epoch
# seconds of a line's time= (RFC 3339, as slog writes it), dur(s) the seconds
# of a Go duration (1m2.5s, 501.2ms, 3µs).
AWK_TIME='
function days(y, m, d) { y -= (m <= 2); era = int(y / 400); yoe = y - era * 400
	doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
	doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy; return era * 146097 + doe - 719468 }
function ts(line,  t, off, sign, o) {
	if (!match(line, /time=[0-9-]+T[0-9:.]+(Z|[+-][0-9][0-9]:[0-9][0-9])/)) return -1
	t = substr(line, RSTART + 5, RLENGTH - 5); off = 0
	if (t ~ /[+-][0-9][0-9]:[0-9][0-9]$/) { o = substr(t, length(t) - 5); sign = substr(o, 1, 1) == "-" ? -1 : 1
		off = sign * (substr(o, 2, 2) * 3600 + substr(o, 5, 2) * 60); t = substr(t, 1, length(t) - 6) }
	else sub(/Z$/, "", t)
	return days(substr(t, 1, 4) + 0, substr(t, 6, 2) + 0, substr(t, 9, 2) + 0) * 86400 + \
		substr(t, 12, 2) * 3600 + substr(t, 15, 2) * 60 + substr(t, 18) - off }
function dur(d,  t, tok, v, u) { t = 0
	while (match(d, /^[0-9.]+(h|ms|µs|us|ns|m|s)/)) {
		tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
		match(tok, /[0-9.]+/); v = substr(tok, 1, RLENGTH); u = substr(tok, RLENGTH + 1)
		t += v * (u == "h" ? 3600 : u == "m" ? 60 : u == "s" ? 1 : u == "ms" ? 1e-3 : u == "ns" ? 1e-9 : 1e-6) }
	return t }
'

# cl_proc_span CAMPAIGN LOG...: "first_start last_end processes runs
# sum_of_walls" (epoch seconds; seconds) of a campaign's simulation
# processes, from the runners' "process ended" lines (start = end - wall).
cl_proc_span() {
	local camp=$1; shift
	cat "$@" | grep -F 'msg="process ended"' | grep -F "campaign=$camp " | awk "$AWK_TIME"'
		{ e = ts($0); match($0, / wall=[^ ]+/); w = dur(substr($0, RSTART + 6, RLENGTH - 6))
		  match($0, / runs=[^ ]+/); r = substr($0, RSTART + 6, RLENGTH - 6); nr += split(r, x, ",")
		  s = e - w; if (n == 0 || s < lo) lo = s; if (n == 0 || e > hi) hi = e; n++; sw += w }
		END { printf "%.3f %.3f %d %d %.3f\n", lo, hi, n, nr, sw }'
}

# cl_batch_hist CAMPAIGN LOG...: how many runs the campaign's processes ran,
# as "runs_per_process:processes ..." (1:300 2:80 ...).
cl_batch_hist() {
	local camp=$1; shift
	cat "$@" | grep -F 'msg="process ended"' | grep -F "campaign=$camp " |
		sed -E 's/.* runs=([^ ]+).*/\1/' | awk '{ h[split($1, x, ",")]++ } END { for (k in h) print k ":" h[k] }' |
		sort -n | tr '\n' ' '
}

# cl_json_str FILE KEY: a string field of the --json summary.
cl_json_str() { sed -n "s/^  \"$2\": *\"\([^\"]*\)\",\{0,1\}$/\1/p" "$1" | head -n1; }

# cl_cpu_ms PID: user+system CPU (ms) of a live process, from /proc/PID/stat.
cl_cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f", ($12 + $13) * 1000 / hz }' "/proc/$1/stat"
}
