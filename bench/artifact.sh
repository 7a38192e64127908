#!/usr/bin/env bash
# artifact.sh: distributing a large build artifact to runner nodes.
#
# The project copy gets a simswarm.toml whose build also writes a
# MB-megabyte file of random bytes (incompressible) into the workspace, so
# the artifact is ~MB MB. A fresh cluster: server, builder and NODES runner
# nodes (SLOTS slots each, each node its own cache directory), every one in
# its own network namespace on a bridge; the client in the root namespace.
# One campaign of NODES*SLOTS*2 Sleepy runs (0.5 s) makes every node
# materialise the tree (snapshot + artifact) once.
#
# Reported per node: artifact_bytes of its "tree ready" log line, bytes its
# interface received (rx_bytes inside the namespace, before/after), when its
# transfer ran (the root-side veth's tx_bytes sampled every 0.1 s: first
# sample above 1 MB to first sample at 99 % of the node's total) and when it
# logged "tree ready". Aggregate MB/s = bytes the nodes received / time from
# the campaign's start (client command) to the last "tree ready"; also over
# the distribution phase only (from the builder's "build finished").
#
# Needs root (network namespaces), iproute2. Env: NODES (8), SLOTS (2),
# MB (100), SIMSWARM_BIN.
source "$(dirname "$0")/cluster-lib.sh"
NODES=${NODES:-8}
SLOTS=${SLOTS:-2}
MB=${MB:-100}
names=(server builder)
for ((i = 1; i <= NODES; i++)); do names+=("r$i"); done
cl_init "${names[@]}"
echo "# $NODES runner nodes x $SLOTS slots, artifact with a ${MB} MB random file; load average $(cut -d' ' -f1-3 /proc/loadavg)"

copy_aloha "$BT/proj"
cat >"$BT/proj/simswarm.toml" <<EOF
[build]
command = "make MODE=release -j{jobs} && head -c ${MB}000000 /dev/urandom > data.bin"
EOF

cl_cluster "$NODES" "$SLOTS" || exit 1
logs=()
for ((i = 1; i <= NODES; i++)); do logs+=("$CL_DIR/r$i.log"); done

# rx of every node (inside its namespace) before.
declare -A RX0
for ((i = 1; i <= NODES; i++)); do RX0[r$i]=$(cl_rx "r$i"); done
SRVTX0=$(cl_tx server)

# Sampler: root-side veth tx_bytes (= bytes sent to the node) of every
# runner node every 0.1 s, at most 10 minutes, until $BT/stop-sampler exists.
sampler() {
	local files=() i line v k
	for ((i = 1; i <= NODES; i++)); do files+=("/sys/class/net/$(cl_outer "r$i")/statistics/tx_bytes"); done
	for ((k = 0; k < 6000; k++)); do
		[ -e "$BT/stop-sampler" ] && break
		line=$EPOCHREALTIME
		for f in "${files[@]}"; do read -r v <"$f"; line+=" $v"; done
		echo "$line"
		sleep 0.1
	done >"$BT/samples"
}
sampler &
SAMPLER=$!
CL_HELPERS+=("$SAMPLER")

runs=$((NODES * SLOTS * 2))
cl_run dist -C "$BT/proj" --results "$BT/res" -- ./aloha -c Sleepy --repeat=$runs --sleep=0.5
check_summary "$BT/dist.json" "$BT/dist.log" "$runs" dist "$runs"
touch "$BT/stop-sampler"
wait "$SAMPLER" || true
echo "# campaign: client wall $WALL s; hosts: $(cl_hosts "$BT/dist.json")"

built=$(grep -F 'msg="build finished"' "$CL_DIR/builder.log" | tail -n1 | awk "$AWK_TIME"'{ printf "%.3f", ts($0) }')
bwall=$(grep -F 'msg="build finished"' "$CL_DIR/builder.log" | tail -n1 | sed -E 's/.* wall=([^ ]+).*/\1/')
echo "# build finished $(calc 'b-a' a="$T0" b="$built") s after the command started (build wall $bwall)"

# Per node: artifact_bytes, rx delta, transfer start/end from the samples
# (relative to the command's start), tree ready.
printf '%-5s %14s %14s %9s %9s %9s %11s %9s\n' node artifact_bytes rx_bytes start_s end_s xfer_s xfer_MB/s ready_s
total=0 last=0 missing=0 xfirst= xlast=
for ((i = 1; i <= NODES; i++)); do
	node=r$i
	ab=$(grep -F 'msg="tree ready"' "$CL_DIR/$node.log" | head -n1 | sed -nE 's/.* artifact_bytes=([0-9]+).*/\1/p')
	ready=$(grep -F 'msg="tree ready"' "$CL_DIR/$node.log" | head -n1 | awk "$AWK_TIME"'{ printf "%.3f", ts($0) }')
	rx=$(($(cl_rx "$node") - RX0[$node]))
	total=$((total + rx))
	read -r s e < <(awk -v col=$((i + 1)) '
		NR == 1 { b = $col } { t[NR] = $1; v[NR] = $col - b; n = NR }
		END { f = v[n]; s = e = -1
		      for (k = 1; k <= n; k++) { if (s < 0 && v[k] > 1e6) s = t[k - 1 > 0 ? k - 1 : 1]; if (e < 0 && v[k] >= 0.99 * f) e = t[k] }
		      printf "%s %s\n", s, e }' "$BT/samples")
	if [ -z "$ready" ]; then
		missing=$((missing + 1))
		printf '%-5s %14s %14s   (no "tree ready" logged)\n' "$node" - "$rx"
		continue
	fi
	last=$(calc 'r>l?r:l' r="$ready" l="$last")
	if [ "$s" = -1 ]; then
		xs=- xe=- xd=- xr=-
	else
		xs=$(calc 's-a' s="$s" a="$T0") xe=$(calc 'e-a' e="$e" a="$T0") xd=$(calc 'e-s' e="$e" s="$s")
		xr=$(calc 'd>0?b/1e6/d:0' b="$rx" d="$xd")
		xfirst=$(calc 'f==""||s<f?s:f' f="$xfirst" s="$s") xlast=$(calc 'e>l?e:l' l="${xlast:-0}" e="$e")
	fi
	printf '%-5s %14s %14s %9s %9s %9s %11s %9s\n' "$node" "$ab" "$rx" "$xs" "$xe" "$xd" "$xr" "$(calc 'r-a' r="$ready" a="$T0")"
done
if [ $missing != 0 ]; then
	BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
	echo "PROBLEM: $missing node(s) never logged \"tree ready\"" >&2
fi
srvtx=$(($(cl_tx server) - SRVTX0))
whole=$(calc 'l-a' l="$last" a="$T0")
dist=$(calc 'l-b' l="$last" b="$built")
echo
echo "total received by the $NODES nodes: $total bytes ($(calc 't/1e6' t="$total") MB); sent by the server node: $srvtx bytes"
echo "command start -> last tree ready: $whole s: $(calc 'w>0?t/1e6/w:0' t="$total" w="$whole") MB/s aggregate"
echo "build finished -> last tree ready: $dist s: $(calc 'w>0?t/1e6/w:0' t="$total" w="$dist") MB/s aggregate"
[ -n "$xfirst" ] && echo "first transfer start -> last transfer end (samples): $(calc 'b-a' a="$xfirst" b="$xlast") s: $(calc 'b>a?t/1e6/(b-a):0' t="$total" a="$xfirst" b="$xlast") MB/s aggregate"
bench_end
