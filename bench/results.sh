#!/usr/bin/env bash
# results.sh: simswarm results against opp_scavetool and against reading
# the files (cat > /dev/null), on real OMNeT++ 6.1 output.
#
# 1. NRUNS (10 000) .sca files: the 42 of aloha's PureAlohaExperiment
#    (real runs, 10 simulated minutes) copied under distinct names.
# 2. One .vec of about VEC_MB (1000) MB with its .vci: aloha run 0 with a
#    sim-time-limit scaled to that size.
# Each is exported to CSV by `simswarm results` and by `opp_scavetool
# export -F CSV-R`, written to a file on the same disk (both tools write
# the same amount), and read by cat; wall time and peak RSS from GNU time.
# The goal: faster than opp_scavetool, peak RSS under 100 MB whatever the
# size.
#
# Needs ../shared/omnetpp (unpacked here into $BT), zstd, g++, GNU time.
# Env: NRUNS (10000), VEC_MB (1000).
source "$(dirname "$0")/lib.sh"
NRUNS=${NRUNS:-10000}
VEC_MB=${VEC_MB:-1000}
bench_init
TARBALL=$REPO/../shared/omnetpp/omnetpp-6.1-linux-x86_64.tar.zst
[ -f "$TARBALL" ] || { echo "PROBLEM: $TARBALL not found" >&2; exit 1; }
zstd -dc "$TARBALL" | tar -x -C "$BT"
OPP=$BT/omnetpp-6.1
export PATH=$OPP/bin:$PATH
(cd "$OPP/samples/aloha" && make MODE=release >/dev/null 2>&1)
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# measure LABEL CMD...: wall seconds and peak RSS (MB) of one command.
measure() {
	local label=$1; shift
	sync
	/usr/bin/time -f "%e %M" -o "$BT/time" "$@" >/dev/null 2>"$BT/err" || { echo "PROBLEM: $label failed: $(tail -3 "$BT/err")" >&2; BENCH_PROBLEMS=1; }
	read -r wall rss <"$BT/time"
	printf '%-44s %8.2f s %8.1f MB peak RSS\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)"
}

# 1: many .sca files.
SRC=$BT/src
(cd "$OPP/samples/aloha" && ./aloha -s -u Cmdenv -c PureAlohaExperiment -r 0..41 --sim-time-limit=10min --result-dir="$SRC" >/dev/null)
SCA=$BT/sca
mkdir -p "$SCA"
i=0
while [ $i -lt "$NRUNS" ]; do
	for f in "$SRC"/*.sca; do
		[ $i -lt "$NRUNS" ] || break
		cp "$f" "$SCA/r$i-$(basename "$f")"
		i=$((i + 1))
	done
done
bytes=$(du -sb "$SCA" | cut -f1)
echo "## $NRUNS .sca files, $((bytes / 1048576)) MB"
measure "cat > /dev/null" sh -c "cat $SCA/*.sca > /dev/null"
measure "simswarm results -o out.csv" "$SIMSWARM" results -o "$BT/ours.csv" "$SCA"
measure "opp_scavetool export -F CSV-R -o out.csv" sh -c "opp_scavetool export -F CSV-R -o $BT/theirs.csv $SCA/*.sca"
echo "# rows: simswarm $(($(wc -l <"$BT/ours.csv") - 1)); opp_scavetool $(awk -F, '$2 ~ /^(scalar|histogram|statistic|param)$/' "$BT/theirs.csv" | wc -l) items (+ run metadata and attribute rows)"
measure "simswarm results --summary" "$SIMSWARM" results --summary -o "$BT/sum.csv" "$SCA"
rm -rf "$SCA" "$BT"/*.csv

# 2: one big .vec. 10 simulated minutes write ~0.48 MB of vectors.
VEC=$BT/vec
minutes=$((VEC_MB * 10 * 100 / 48))
(cd "$OPP/samples/aloha" && ./aloha -s -u Cmdenv -c PureAlohaExperiment -r 0 --sim-time-limit=${minutes}min --result-dir="$VEC" >/dev/null)
vec=$(ls "$VEC"/*.vec)
echo "## one .vec of $(($(stat -c %s "$vec") / 1048576)) MB ($(grep -c . "${vec%.vec}.vci") index lines)"
measure "cat > /dev/null" cat "$vec"
measure "simswarm results --vectors -o out.csv" "$SIMSWARM" results --vectors -o "$BT/ours.csv" "$VEC"
ours=$(stat -c %s "$BT/ours.csv"); rm -f "$BT/ours.csv"
measure "simswarm results --vectors --format json" "$SIMSWARM" results --vectors --format json -o "$BT/ours.json" "$VEC"
rm -f "$BT/ours.json"
measure "simswarm results --vectors --format parquet" "$SIMSWARM" results --vectors --format parquet -o "$BT/ours.parquet" "$VEC"
rm -f "$BT/ours.parquet"
measure "opp_scavetool export -F CSV-R -o out.csv" opp_scavetool export -F CSV-R -o "$BT/theirs.csv" "$vec"
echo "# CSV bytes: simswarm $((ours / 1048576)) MB, opp_scavetool $(($(stat -c %s "$BT/theirs.csv") / 1048576)) MB"
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $BENCH_PROBLEMS
