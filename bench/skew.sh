#!/usr/bin/env bash
# skew.sh: longest first. A campaign of N runs of S seconds each but one of
# L seconds (10x by default), placed last in the campaign's order, on J
# slots. The first campaign has no run times to go by and runs in the
# campaign's order (FIFO: the long run starts last); the same campaign into
# another results directory (so every run executes again) then has the
# first one's run times and starts the long run first. Reported: both
# makespans against the lower bound max(longest run, total / J), and the
# --dry-run estimate against the second campaign's wall time. Env: N
# (default 16), S (default 1), L (default 10), J (default 4).
source "$(dirname "$0")/lib.sh"
N=${N:-16}
S=${S:-1}
L=${L:-10}
J=${J:-4}
need awk
bench_init

P=$BT/skew
mkdir -p "$P"
cat >"$P/simswarm.toml" <<TOML
[build]
command = ""

[run]
command = "sh -c 'if [ {i} = $((N - 1)) ]; then sleep $L; else sleep $S; fi; echo {i} > {resultdir}/run-{i}.txt'"

[run.vars]
i = [$(seq -s, 0 $((N - 1)))]
TOML
STATE=$BT/state
echo "# $N runs: $((N - 1)) of ${S}s, 1 of ${L}s (the last), J=$J; load: $(cut -d' ' -f1-3 /proc/loadavg)"
lower=$(calc 'l>t/j?l:t/j' l="$L" t="$(( (N - 1) * S + L ))" j="$J")

campaign() { # results dir -> wall seconds
	local t0
	t0=$(now)
	"$SIMSWARM" run -q -C "$P" --state "$STATE" -j "$J" --results "$1" --json >"$BT/$1.json"
	since "$t0"
}
warm=$(campaign warmup) # engine state, build and run list: not what is measured
rm -rf "$STATE/history"
fifo=$(campaign fifo)
est=$("$SIMSWARM" run -C "$P" --state "$STATE" -j "$J" --results lf --dry-run | sed -n 's/^expected wall time: \([^ ]*\) .*/\1/p')
lf=$(campaign lf)
echo "lower bound max(longest, total/J): ${lower} s"
echo "FIFO (no run times yet):  ${fifo} s  ratio to lower bound $(calc 'a/b' a="$fifo" b="$lower")"
echo "longest first (history):  ${lf} s  ratio to lower bound $(calc 'a/b' a="$lf" b="$lower")"
echo "dry-run estimate before the second campaign: $est (actual ${lf} s)"
echo "(first campaign, warm-up with engine start and build: ${warm} s)"
