# Shared helpers for the bench/*.sh scripts. Sourced, not run.
#
# bench_init builds simswarm from this work tree into a fresh temporary
# directory ($BT) that is removed on exit (or uses the binary $SIMSWARM_BIN
# if set); every script works on copies of examples/aloha inside $BT, so the
# repository is never written to.

set -euo pipefail

# bench_init: cd to the repository root, make $BT, build $SIMSWARM.
bench_init() {
	[ -z "${SIMSWARM_BIN:-}" ] || SIMSWARM_BIN=$(realpath "$SIMSWARM_BIN")
	cd "$(dirname "$0")/.."
	REPO=$PWD
	BT=$(mktemp -d "${TMPDIR:-/tmp}/simswarm-bench.XXXXXX")
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	SIMSWARM=${SIMSWARM_BIN:-$BT/simswarm}
	BENCH_PROBLEMS=0
	# Embedded mode only, whatever the environment says.
	unset SIMSWARM_SERVER SIMSWARM_CREDS SIMSWARM_STATE
	CPUS=$(nproc 2>/dev/null || echo 1)
	echo "# $(basename "$0"): $(date -u +%Y-%m-%dT%H:%M:%SZ), $CPUS CPUs, $(uname -sr)"
	if [ -n "${SIMSWARM_BIN:-}" ]; then
		echo "# simswarm: \$SIMSWARM_BIN (not rebuilt)"
	else
		echo "# simswarm: built from this work tree, $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'), $(go version | cut -d' ' -f3)"
		go build -o "$SIMSWARM" ./cmd/simswarm
	fi
}

bench_cleanup() {
	local rc=$?
	# Background helpers (samplers) this script started.
	local p
	for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${BT:-}" ] && rm -rf "$BT"
	return $rc
}

need() {
	local tool
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "missing tool: $tool (e.g. apt-get install -y $tool)" >&2
			exit 2
		fi
	done
}

# copy_aloha DEST: copy the sources of examples/aloha (what simswarm would
# snapshot inside git: tracked and untracked-not-ignored files; never the
# build outputs out/, aloha, results/) to DEST, outside any git work tree.
copy_aloha() {
	local dest=$1 src=$REPO/examples/aloha
	mkdir -p "$dest"
	if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$src" ls-files -z --cached --others --exclude-standard |
			tar -C "$src" --null -T - -cf - | tar -C "$dest" -xf -
	else
		tar -C "$src" --exclude=./out --exclude=./aloha --exclude=./results -cf - . |
			tar -C "$dest" -xf -
	fi
}

# build_aloha DIR: build the example with make (for the direct baselines).
build_aloha() {
	make -C "$1" -s -j"$CPUS" >/dev/null
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# calc EXPR VARS...: awk arithmetic, e.g. calc 'a/b' a=1 b=2
calc() {
	local expr=$1; shift
	local args=() v
	for v in "$@"; do args+=(-v "$v"); done
	awk "${args[@]}" "BEGIN { printf \"%.3f\", ($expr) }"
}

# CPU time (user+system seconds, including all waited-for child processes)
# of a command: "${TIMEX[@]}" FILE cmd... when GNU time is installed (else
# TIMEX is empty and cpu_of prints "?").
TIMEX=()
[ -x /usr/bin/time ] && TIMEX=(/usr/bin/time -f '%U %S' -o)
cpu_of() { awk '{ printf "%.2f", $1 + $2 }' "$1" 2>/dev/null || echo '?'; }
# timex FILE CMD...: run CMD, CPU time to FILE if GNU time is installed.
timex() {
	local f=$1; shift
	if [ ${#TIMEX[@]} -gt 0 ]; then "${TIMEX[@]}" "$f" "$@"; else "$@"; fi
}

# json_field FILE KEY: a number from simswarm's --json summary.
json_field() {
	sed -n "s/^  \"$2\": *\([0-9.]*\),\{0,1\}$/\1/p" "$1" | head -n1
}

# check_summary JSON ERRLOG EXPECTED_RUNS LABEL [EXPECTED_EXECUTED]: warn (and
# count a problem) when the summary is not what the benchmark expects.
check_summary() {
	local js=$1 log=$2 want=$3 label=$4 wantexec=${5:-}
	local runs ok failed exec cached
	runs=$(json_field "$js" runs); ok=$(json_field "$js" succeeded)
	failed=$(json_field "$js" failed); exec=$(json_field "$js" executed)
	cached=$(json_field "$js" cached)
	echo "#   $label: runs=${runs:-?} succeeded=${ok:-?} failed=${failed:-?} executed=${exec:-?} cached=${cached:-?}"
	if [ "${runs:-}" != "$want" ] || [ "${ok:-}" != "$want" ] || [ "${failed:-1}" != 0 ] ||
		{ [ -n "$wantexec" ] && [ "${exec:-}" != "$wantexec" ]; }; then
		BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
		echo "PROBLEM: $label: expected $want runs succeeded${wantexec:+ ($wantexec executed)}" >&2
		sed -n '1,40p' "$js" >&2
		tail -n 20 "$log" >&2
	fi
}

# ss_run LABEL STATE ARGS...: run simswarm (-q --json) with the given state
# directory; the summary goes to $BT/LABEL.json, stderr to $BT/LABEL.log,
# the measured wall time (seconds) to $WALL. Never fails the script. The
# array SS_PREFIX, if set, is put before the command (e.g. /usr/bin/time).
ss_run() {
	local label=$1 state=$2; shift 2
	local t0 rc=0
	t0=$(now)
	${SS_PREFIX[@]+"${SS_PREFIX[@]}"} "$SIMSWARM" run --state "$state" -q --json "$@" >"$BT/$label.json" 2>"$BT/$label.log" || rc=$?
	WALL=$(since "$t0")
	if [ $rc -ne 0 ]; then
		BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1))
		echo "PROBLEM: $label: simswarm exited with status $rc: simswarm run --state STATE -q --json $*" >&2
		tail -n 20 "$BT/$label.log" >&2
	fi
	return 0
}

# warm_build PROJ STATE: build the project into STATE's cache (and start the
# engine once) with a one-run campaign whose run keys no measured campaign
# shares (its command has --repeat=1).
warm_build() {
	ss_run "warm-$(basename "$2")" "$2" -C "$1" --results "$BT/warm-res-$(basename "$2")" \
		-- ./aloha -c Noop -r 0 --repeat=1
}

# process_walls LOG: sum (seconds) of the `wall=` of the "process ended"
# lines that simswarm -v logs, one per simulation process.
process_walls() {
	grep 'msg="process ended"' "$1" 2>/dev/null | sed -E 's/.* wall=([^ ]+).*/\1/' | awk '
		{ d = $1; t = 0
		  while (match(d, /^[0-9.]+(h|ms|µs|us|ns|m|s)/)) {
			tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			match(tok, /[0-9.]+/); v = substr(tok, 1, RLENGTH); u = substr(tok, RLENGTH + 1)
			t += v * (u == "h" ? 3600 : u == "m" ? 60 : u == "s" ? 1 : u == "ms" ? 1e-3 : u == "ns" ? 1e-9 : 1e-6)
		  }
		  sum += t }
		END { printf "%.3f", sum }'
}

# count_files DIR GLOB: number of files matching GLOB (a find -name pattern).
count_files() { find "$1" -type f -name "$2" 2>/dev/null | wc -l; }

bench_end() {
	if [ "$BENCH_PROBLEMS" -ne 0 ]; then
		echo "# $BENCH_PROBLEMS problem(s) seen: see PROBLEM lines on stderr" >&2
		return 1
	fi
}
