#!/usr/bin/env bash
# cached.sh: cost of running a finished campaign again.
#
# A 1000-run campaign (`./aloha -c Noop -r 0..999`, -j J, default results/
# inside the project copy) is run once, then the same command again: the
# second invocation should execute nothing. Measured twice, each time with a
# fresh state directory and project copy:
#   A: the second invocation timed (no tracing);
#   B: the second invocation under `strace -f -e trace=execve`, to count the
#      processes it starts (expected: no simulation process at all).
# Baselines from this same script run: the first (executing) invocation, and
# xargs -P J running the same 1000 runs directly.
# Env: N (default 1000), J (default 2).
source "$(dirname "$0")/lib.sh"
N=${N:-1000}
J=${J:-2}
need make awk xargs seq strace
bench_init
last=$((N - 1))
echo "# N=$N runs of ./aloha -c Noop -r 0..$last, J=$J"

copy_aloha "$BT/base"
build_aloha "$BT/base"

t0=$(now)
(cd "$BT/base" && seq 0 "$last" | xargs -P "$J" -I{} ./aloha -s -c Noop -r {} --result-dir="$BT/xres" >/dev/null)
XW=$(since "$t0")
rm -rf "$BT/xres"
echo "xargs -P $J, $N direct runs:         $XW s"

# A: timing.
copy_aloha "$BT/projA"
ss_run A1 "$BT/stateA" -C "$BT/projA" -j "$J" -- ./aloha -c Noop -r "0..$last"
A1=$WALL
check_summary "$BT/A1.json" "$BT/A1.log" "$N" "A first" "$N"
ss_run A2 "$BT/stateA" -C "$BT/projA" -j "$J" -- ./aloha -c Noop -r "0..$last"
A2=$WALL; A2J=$(json_field "$BT/A2.json" wall_seconds)
check_summary "$BT/A2.json" "$BT/A2.log" "$N" "A second" 0
ss_run A3 "$BT/stateA" -C "$BT/projA" -j "$J" -- ./aloha -c Noop -r "0..$last"
A3=$WALL
check_summary "$BT/A3.json" "$BT/A3.log" "$N" "A third" 0
echo "simswarm first invocation (cold):    $A1 s"
echo "simswarm second invocation (cached): $A2 s (summary wall_seconds $A2J)"
echo "simswarm third invocation (cached):  $A3 s"

# B: processes started by the second invocation.
copy_aloha "$BT/projB"
ss_run B1 "$BT/stateB" -C "$BT/projB" -j "$J" -- ./aloha -c Noop -r "0..$last"
check_summary "$BT/B1.json" "$BT/B1.log" "$N" "B first" "$N"
trace=$BT/execve.trace
t0=$(now)
rc=0
strace -f -e trace=execve -qq -o "$trace" \
	"$SIMSWARM" run --state "$BT/stateB" -q --json -C "$BT/projB" -j "$J" -- ./aloha -c Noop -r "0..$last" \
	>"$BT/B2.json" 2>"$BT/B2.log" || rc=$?
B2=$(since "$t0")
[ $rc -eq 0 ] || { echo "PROBLEM: traced second invocation exited with $rc" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); }
check_summary "$BT/B2.json" "$BT/B2.log" "$N" "B second (traced)" 0
# Successful execve calls as "PROGRAM ARGV" lines, the first one being
# simswarm itself; with -f a call can be split into "<unfinished ...>" and
# "<... execve resumed>" lines of the same pid.
awk '
	$2 ~ /^execve\(/ { line = $0; sub(/^[0-9]+ +/, "", line); start[$1] = line }
	/execve/ && / = 0$/ {
		l = (index($0, "resumed>") ? start[$1] : $0); sub(/^[0-9]+ +/, "", l)
		if (match(l, /^execve\("[^"]*", \[[^]]*\]/)) {
			l = substr(l, 9, RLENGTH - 9); sub(/", \[/, " ", l); print l
		} else print "?"
		ok++ }
	/execve/ && / = -1 / { failed++ }
	END { print failed + 0 > "/dev/stderr" }' "$trace" >"$BT/execs" 2>"$BT/execs.failed"
total=$(wc -l <"$BT/execs")
others=$((total > 0 ? total - 1 : 0))
sims=$(sed 1d "$BT/execs" | grep -c 'aloha' || true)
failed_execs=$(cat "$BT/execs.failed")
echo "second invocation under strace:      $B2 s; execve: $total successful ($others besides simswarm itself, $sims of them aloha), $failed_execs failed (PATH lookups)"
if [ "$others" -gt 0 ]; then
	echo "processes started by the cached rerun (count, program, argv):"
	sed 1d "$BT/execs" | cut -c1-160 | sort | uniq -c | sort -rn | sed 's/^/    /'
fi
[ "$sims" = 0 ] || { echo "PROBLEM: the cached rerun started $sims simulation processes" >&2; BENCH_PROBLEMS=$((BENCH_PROBLEMS + 1)); }

echo
printf '%-40s %9s %14s %14s\n' case wall_s vs_first_run vs_xargs
printf '%-40s %9s %14s %14s\n' "simswarm cached rerun (2nd invocation)" "$A2" "$(calc 'a/b' a="$A2" b="$A1")" "$(calc 'a/b' a="$A2" b="$XW")"
printf '%-40s %9s %14s %14s\n' "simswarm cached rerun (3rd invocation)" "$A3" "$(calc 'a/b' a="$A3" b="$A1")" "$(calc 'a/b' a="$A3" b="$XW")"
printf '%-40s %9s %14s %14s\n' "simswarm first run (cold)" "$A1" "1.000" "$(calc 'a/b' a="$A1" b="$XW")"
bench_end
