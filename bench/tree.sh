#!/usr/bin/env bash
# tree.sh: materialising an INET-sized tree on runner nodes.
#
# The project: the aloha example plus FILES generated source files
# (SIZE bytes each, base64 text: compresses like source code does not, a
# worst case) and one BIN_MB-megabyte binary (half random, half zeros, about
# as compressible as a release libINET.so). A fresh cluster: server,
# builder and NODES runner nodes, each in its own network namespace on a
# bridge, each with its own cache directory. One campaign of NODES*SLOTS*2
# Sleepy runs makes every node lay the tree out once.
#
# simswarm: per node, the "tree ready" line of its log: bytes of the tree
# (sources + artifact), seconds it took, whether it came as one pack, and
# how often the node fetched (must be once); bytes its interface received.
# Baseline, in the same lab right after: `tar -cf - | socat` from the root
# namespace (where the client is) to `socat | tar -xf -` in each node's
# namespace, all NODES at once, into a fresh directory: MB/s of the same
# tree per node. Then one source file changes and a second campaign runs:
# each node must fetch that one file.
#
# Needs root, iproute2, socat. Env: NODES (8), SLOTS (1), FILES (5000),
# SIZE (12000), BIN_MB (190), SIMSWARM_BIN.
source "$(dirname "$0")/cluster-lib.sh"
need socat tar
NODES=${NODES:-8}
SLOTS=${SLOTS:-1}
FILES=${FILES:-5000}
SIZE=${SIZE:-12000}
BIN_MB=${BIN_MB:-190}
names=(server builder)
for ((i = 1; i <= NODES; i++)); do names+=("r$i"); done
cl_init "${names[@]}"
echo "# $NODES runner nodes x $SLOTS slots; tree: aloha + $FILES files x $SIZE B + one $BIN_MB MB binary; load average $(cut -d' ' -f1-3 /proc/loadavg)"

copy_aloha "$BT/proj"
mkdir -p "$BT/proj/src/inet"
head -c $((FILES * SIZE * 3 / 4)) /dev/urandom | base64 -w 0 | split -a 4 -d -b "$SIZE" - "$BT/proj/src/inet/Module"
for f in "$BT/proj/src/inet/Module"*; do mv "$f" "$f.cc"; done
{ head -c $((BIN_MB * 500000)) /dev/urandom; head -c $((BIN_MB * 500000)) /dev/zero; } >"$BT/proj/src/libINET.so"
TREE_BYTES=$(du -sb --apparent-size "$BT/proj" | cut -f1)
echo "# tree: $(find "$BT/proj" -type f | wc -l) files, $TREE_BYTES bytes"

cl_cluster "$NODES" "$SLOTS" || exit 1
declare -A RX0
for ((i = 1; i <= NODES; i++)); do RX0[r$i]=$(cl_rx "r$i"); done
runs=$((NODES * SLOTS * 2))
# -b 1: one run per process, so that every node takes runs at once.
cl_run first -C "$BT/proj" --results "$BT/res" -b 1 -- ./aloha -c Sleepy --repeat=$runs --sleep=2
check_summary "$BT/first.json" "$BT/first.log" "$runs" first "$runs"
echo "# first campaign: client wall $WALL s (upload, build and runs included); hosts: $(cl_hosts "$BT/first.json")"

field() { sed -nE "s/.* $1=([^ ]+).*/\1/p"; }
printf '%-5s %12s %12s %8s %5s %9s %8s\n' node tree_bytes rx_bytes seconds pack MB/s fetches
sum_rate=0 n_rate=0
for ((i = 1; i <= NODES; i++)); do
	node=r$i log=$CL_DIR/$node.log
	line=$(grep -F 'msg="tree ready"' "$log" | head -n1 || true)
	fetches=$(grep -cF 'msg="fetching sources"' "$log" || true)
	if [ -z "$line" ]; then
		BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
		echo "PROBLEM: $node never logged \"tree ready\"" >&2
		continue
	fi
	bytes=$(($(echo "$line" | field source_bytes) + $(echo "$line" | field artifact_bytes)))
	secs=$(echo "$line" | field seconds)
	rate=$(calc 'b/1e6/s' b="$bytes" s="$secs")
	sum_rate=$(calc 'a+b' a="$sum_rate" b="$rate") n_rate=$((n_rate + 1))
	printf '%-5s %12s %12s %8.2f %5s %9.1f %8s\n' "$node" "$bytes" "$(($(cl_rx "$node") - RX0[$node]))" "$secs" "$(echo "$line" | field pack)" "$rate" "$fetches"
	if [ "$fetches" != 1 ]; then
		BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
		echo "PROBLEM: $node fetched sources $fetches times, want once:" >&2
		grep -E 'msg="(fetching sources|tree ready)|level=(WARN|ERROR)' "$log" | cut -c1-400 >&2
	fi
done
SIM_RATE=$(calc 'n>0?s/n:0' s="$sum_rate" n="$n_rate")

# Baseline: tar | socat -> socat | tar into every node at once.
port=$((20000 + CL_ID % 20000))
xfer=()
for ((i = 1; i <= NODES; i++)); do
	node=r$i
	mkdir -p "$BT/tar-$node"
	ip netns exec "$(cl_ns "$node")" sh -c "socat -u TCP-LISTEN:$port,reuseaddr STDOUT | tar -xf - -C '$BT/tar-$node'; date +%s.%N > '$BT/tar-$node.done'" &
	CL_HELPERS+=($!)
	xfer+=($!)
done
sleep 0.5
t0=$(now)
for ((i = 1; i <= NODES; i++)); do
	(tar -C "$BT/proj" --exclude=./results -cf - . | socat -u STDIN "TCP:$(cl_addr "r$i"):$port") &
	xfer+=($!)
done
# Only these: the cluster's processes are background jobs too.
for p in "${xfer[@]}"; do wait "$p" || true; done
tsum=0
for ((i = 1; i <= NODES; i++)); do
	d=$(calc 'b-a' a="$t0" b="$(cat "$BT/tar-r$i.done")")
	tsum=$(calc 'a+b' a="$tsum" b="$(calc 't/1e6/d' t="$TREE_BYTES" d="$d")")
done
TAR_RATE=$(calc 's/n' s="$tsum" n="$NODES")
echo
echo "per node, mean: simswarm $SIM_RATE MB/s; tar | socat baseline $TAR_RATE MB/s; ratio $(calc 'b>0?a/b:0' a="$SIM_RATE" b="$TAR_RATE") (goal >= 0.8)"

# One changed file: each node fetches that file only.
echo "// changed" >>"$BT/proj/src/inet/Module0001.cc"
cl_run second -C "$BT/proj" --results "$BT/res2" -b 1 -- ./aloha -c Sleepy --repeat=$runs --sleep=2.5
for ((i = 1; i <= NODES; i++)); do
	line=$(grep -F 'msg="tree ready"' "$CL_DIR/r$i.log" | sed -n 2p || true)
	f=$(echo "$line" | field fetched_files)
	echo "r$i second tree: fetched_files=$f fetched_bytes=$(echo "$line" | field fetched_bytes) seconds=$(echo "$line" | field seconds)"
	if [ "$f" != 1 ]; then
		BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
		echo "PROBLEM: r$i fetched $f files after one file changed, want 1" >&2
	fi
done
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$CL_DIR"/*.log "$KEEP_LOGS"/
bench_end
