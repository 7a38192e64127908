#!/usr/bin/env bash
# heavy.sh: runs with big vector output (like INET's ber campaign).
#
# N runs of `./aloha -c Heavy --repeat=N` (each records vectors until its
# .vec reaches 70 MB, ~0.6 s of CPU) with -j J, vs. the same runs under
# xargs -P J writing straight to a result directory (`./aloha -s -c Heavy
# -r $i --repeat=N --result-dir=DIR`, console to /dev/null). simswarm runs
# with a warm build (cached first by a one-run campaign of another config);
# its results directory lies outside the project copy, on the same file
# system as its state directory.
# xargs is timed before and after simswarm; its mean is the baseline.
# Reported: walls and simswarm/xargs (goal <= 1.1); CPU time of each phase;
# bytes in the results directory; peak disk use of the state directory and
# of the results directory (du, sampled every 0.5 s); bytes written to the
# block device during each phase (/proc/diskstats, after sync; includes
# anything else the machine wrote meanwhile); how busy simswarm kept its
# slots (sum of the process walls it logs with -v, over J x wall).
# Env: N (default 66), J (default 2), VECTOR_BYTES (default: the ini's 70MB).
source "$(dirname "$0")/lib.sh"
N=${N:-66}
J=${J:-2}
VECTOR_BYTES=${VECTOR_BYTES:-}
need make awk xargs seq du sync
bench_init
last=$((N - 1))
extra=()
[ -z "$VECTOR_BYTES" ] || extra=(--vector-bytes="$VECTOR_BYTES")
echo "# N=$N runs of ./aloha -c Heavy --repeat=$N ${extra[*]}, J=$J"

copy_aloha "$BT/base"
build_aloha "$BT/base"
copy_aloha "$BT/proj"

# The block device holding $BT, for /proc/diskstats (empty if not found).
dev=$(df --output=source "$BT" | tail -n1)
dev=${dev#/dev/}
grep -qE "^ *[0-9]+ +[0-9]+ $dev " /proc/diskstats 2>/dev/null || dev=
dev_written() { # bytes written to $dev so far
	[ -n "$dev" ] || { echo 0; return; }
	awk -v d="$dev" '$3 == d { printf "%.0f", $10 * 512 }' /proc/diskstats
}

# sample_du DIR OUT: write the largest `du -sb DIR` seen to OUT every 0.5 s
# until killed (bounded: at most 4 hours).
sample_du() {
	local dir=$1 out=$2 max=0 v i
	for ((i = 0; i < 28800; i++)); do
		v=$(du -sb "$dir" 2>/dev/null | cut -f1 || true)
		[ -n "$v" ] && [ "$v" -gt "$max" ] && { max=$v; echo "$max" >"$out"; }
		sleep 0.5
	done
}
peak() { cat "$1" 2>/dev/null || echo 0; }
gb() { calc 'b/1e9' b="$1"; }

# xargs_phase TAG: the runs under xargs; sets XW (wall), XCPU, XDEV, XBYTES.
xargs_phase() {
	local out=$BT/xres t0 w0 nvec
	sync
	w0=$(dev_written)
	t0=$(now)
	(cd "$BT/base" && seq 0 "$last" | timex "$BT/xargs.cpu" xargs -P "$J" -I{} ./aloha -s -c Heavy -r {} --repeat="$N" "${extra[@]}" --result-dir="$out" >/dev/null)
	XW=$(since "$t0")
	sync
	XDEV=$(($(dev_written) - w0))
	XBYTES=$(du -sb "$out" | cut -f1)
	XCPU=$(cpu_of "$BT/xargs.cpu")
	nvec=$(count_files "$out" '*.vec')
	[ "$nvec" = "$N" ] || { echo "PROBLEM: xargs wrote $nvec of $N .vec files" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); }
	rm -rf "$out"
	sync
	echo "xargs -P $J ($1): $XW s, CPU $XCPU s; result bytes $XBYTES ($(gb "$XBYTES") GB); device writes $(gb "$XDEV") GB"
}

xargs_phase before
XW1=$XW XCPU1=$XCPU XDEV1=$XDEV

# simswarm, warm build.
state=$BT/state
res=$BT/res
warm_build "$BT/proj" "$state"
sync
SBEFORE=$(du -sb "$state" | cut -f1)
sample_du "$state" "$BT/peak-state" &
s1=$!
sample_du "$res" "$BT/peak-res" &
s2=$!
w0=$(dev_written)
SS_PREFIX=(${TIMEX[@]+"${TIMEX[@]}" "$BT/simswarm.cpu"})
ss_run heavy "$state" -v -C "$BT/proj" --results "$res" -j "$J" -- ./aloha -c Heavy --repeat="$N" "${extra[@]}"
SS_PREFIX=()
SW=$WALL; SWJ=$(json_field "$BT/heavy.json" wall_seconds)
sync
SDEV=$(($(dev_written) - w0))
kill "$s1" "$s2" 2>/dev/null || true
wait "$s1" "$s2" 2>/dev/null || true
check_summary "$BT/heavy.json" "$BT/heavy.log" "$N" heavy "$N"
SBYTES=$(du -sb "$res" | cut -f1)
SAFTER=$(du -sb "$state" | cut -f1)
PSTATE=$(peak "$BT/peak-state")
PRES=$(peak "$BT/peak-res")
# The samplers may have missed the last state: the end counts too.
[ "$SAFTER" -le "$PSTATE" ] || PSTATE=$SAFTER
[ "$SBYTES" -le "$PRES" ] || PRES=$SBYTES
SCPU=$(cpu_of "$BT/simswarm.cpu")
nvec=$(count_files "$res" '*.vec')
[ "$nvec" = "$N" ] || { echo "PROBLEM: simswarm left $nvec of $N .vec files in results" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); }
leftover=$(cd "$res" && find . -mindepth 1 -name '.simswarm*' 2>/dev/null | head -n5 | tr '\n' ' ')
[ -z "$leftover" ] || echo "note: left in the results directory: $leftover"
echo "simswarm -j $J: $SW s (summary wall_seconds $SWJ), CPU $SCPU s (with its runs); result bytes $SBYTES ($(gb "$SBYTES") GB); device writes $(gb "$SDEV") GB"
PW=$(process_walls "$BT/heavy.log")
echo "simswarm slots: simulation processes ran $PW s in all, i.e. $(calc 'p/(j*w)' p="$PW" j="$J" w="$SW") of $J x wall busy; mean process wall $(calc 'p/n' p="$PW" n="$N") s per run (xargs phase before: $(calc 'j*w/n' j="$J" w="$XW1" n="$N") s of wall per run per slot)"
echo "state dir: $SBEFORE bytes before, peak $PSTATE ($(gb "$PSTATE") GB), $SAFTER after; results dir peak $PRES ($(gb "$PRES") GB)"
rm -rf "$res"

xargs_phase after
XW2=$XW XCPU2=$XCPU XDEV2=$XDEV

XW=$(calc '(a+b)/2' a="$XW1" b="$XW2")
XCPU=$(calc '(a+b)/2' a="$XCPU1" b="$XCPU2")
XDEV=$(calc '(a+b)/2' a="$XDEV1" b="$XDEV2")

echo
printf '%-22s %9s %9s %14s %16s %10s\n' case wall_s cpu_s result_GB device_write_GB ratio
printf '%-22s %9s %9s %14s %16s %10s\n' "xargs -P $J (mean)" "$XW" "$XCPU" "$(gb "$XBYTES")" "$(gb "$XDEV")" "1.000"
printf '%-22s %9s %9s %14s %16s %10s\n' "simswarm -j $J" "$SW" "$SCPU" "$(gb "$SBYTES")" "$(gb "$SDEV")" "$(calc 'a/b' a="$SW" b="$XW")"
echo "simswarm/xargs wall: $(calc 'a/b' a="$SW" b="$XW") (goal <= 1.1); CPU: $(calc 'b>0?a/b:0' a="$SCPU" b="$XCPU"); device writes: $(calc 'b>0?a/b:0' a="$SDEV" b="$XDEV")"
bench_end
