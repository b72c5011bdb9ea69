#!/usr/bin/env bash
# bench/pcap2verdicts.sh: packets to verdicts end to end,
#   netsentinel extract FILE | netsentinel predict --model M -
# on a synthetic pcap, in records (connections) per second and per CPU-second.
#
# Writes P2V_PACKETS packets (default 1000000) of interleaved HTTP sessions,
# DNS queries, SYN probes and pings (bench/genpcap) to a temporary file,
# trains the default model on data/KDDTrain+.txt.gz unless P2V_MODEL names a
# model file, and runs the pipeline P2V_ROUNDS times (default 3). For each run
# it prints the wall time, the CPU seconds (user + system, both processes)
# and records per wall second and per CPU-second; then the best run, and the
# CPU-seconds of each stage alone (extract to a file; predict from it, with
# verdict lines and with --summary, which writes no explanations). The
# CPU figures stay meaningful on a busy machine; the wall times only on an
# idle one. Records per CPU-second is the throughput per core: the pipeline
# uses every core (predict scores on GOMAXPROCS workers).
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${P2V_PACKETS:-1000000}
rounds=${P2V_ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/netsentinel" ./cmd/netsentinel
go build -o "$tmp/genpcap" ./bench/genpcap
ns=$tmp/netsentinel
model=${P2V_MODEL:-}
if [ -z "$model" ]; then
	model=$tmp/default.model
	echo "training the default model on data/KDDTrain+.txt.gz (set P2V_MODEL to skip)" >&2
	"$ns" train --data data/KDDTrain+.txt.gz --out "$model" >/dev/null
fi
"$tmp/genpcap" -n "$packets" -o "$tmp/bench.pcap"
"$ns" extract "$tmp/bench.pcap" >"$tmp/records.jsonl" 2>/dev/null
records=$(wc -l <"$tmp/records.jsonl")

measure() { # command... -> "wall cpu"
	/usr/bin/time -o "$tmp/time" -f "%e %U %S" "$@" >/dev/null 2>&1
	awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$tmp/time"
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b > 0 ? a / b : 0) }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
pipeline() { "$ns" extract "$tmp/bench.pcap" 2>/dev/null | "$ns" predict --model "$model" - >/dev/null; }
export -f pipeline
export ns tmp model

echo "$packets packets, $records records, $(nproc) cores, model $(basename "$model")"
printf "%-10s %5s %9s %9s %12s %14s\n" run round wall_s cpu_s records/s records/cpu-s
best_w=999999 best_c=999999
for r in $(seq "$rounds"); do
	# bash -c: time counts both processes of the pipe.
	read -r w c < <(measure bash -c pipeline)
	printf "%-10s %5d %9s %9s %12s %14s\n" pipeline "$r" "$w" "$c" "$(div "$records" "$w")" "$(div "$records" "$c")"
	best_w=$(min "$w" "$best_w") best_c=$(min "$c" "$best_c")
done
read -r ew ec < <(measure "$ns" extract "$tmp/bench.pcap")
read -r pw pc < <(measure "$ns" predict --model "$model" "$tmp/records.jsonl")
read -r sw sc < <(measure "$ns" predict --model "$model" --summary "$tmp/records.jsonl")
printf "%-10s %5s %9s %9s %12s %14s\n" extract - "$ew" "$ec" "$(div "$records" "$ew")" "$(div "$records" "$ec")"
printf "%-10s %5s %9s %9s %12s %14s\n" predict - "$pw" "$pc" "$(div "$records" "$pw")" "$(div "$records" "$pc")"
printf "%-10s %5s %9s %9s %12s %14s\n" summary - "$sw" "$sc" "$(div "$records" "$sw")" "$(div "$records" "$sc")"
printf "best: %s records/s wall, %s records per CPU-second (per core) end to end\n" \
	"$(div "$records" "$best_w")" "$(div "$records" "$best_c")"
