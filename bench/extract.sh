#!/usr/bin/env bash
# bench/extract.sh: netsentinel extract on a synthetic pcap against
# `tcpdump -r FILE -w /dev/null` on the same file, in one run.
#
# Writes EXTRACT_PACKETS packets (default 2000000) of interleaved HTTP
# sessions, DNS queries, SYN probes and pings (bench/genpcap) to a temporary
# file, then runs tcpdump and extract on it EXTRACT_ROUNDS times (default 3),
# alternating, and prints for each run the wall time, the CPU seconds (user +
# system) and the packets per second, and the ratios extract/tcpdump of the
# best runs. The CPU figures stay meaningful on a busy machine; the wall
# times only on an idle one.
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${EXTRACT_PACKETS:-2000000}
rounds=${EXTRACT_ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v tcpdump >/dev/null || { echo "bench/extract.sh: tcpdump is not installed" >&2; exit 1; }
go build -o "$tmp/netsentinel" ./cmd/netsentinel
go build -o "$tmp/genpcap" ./bench/genpcap
"$tmp/genpcap" -n "$packets" -o "$tmp/bench.pcap"
cat "$tmp/bench.pcap" >/dev/null # into the page cache

measure() { # name command... -> "wall cpu"
	/usr/bin/time -o "$tmp/time" -f "%e %U %S" "$@" >/dev/null 2>&1
	awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$tmp/time"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
best_tw=999999 best_tc=999999 best_ew=999999 best_ec=999999
printf "%-8s %5s %9s %9s %14s\n" run round wall_s cpu_s packets/cpu-s
for r in $(seq "$rounds"); do
	read -r tw tc < <(measure tcpdump -r "$tmp/bench.pcap" -w /dev/null)
	read -r ew ec < <(measure "$tmp/netsentinel" extract "$tmp/bench.pcap")
	printf "%-8s %5d %9s %9s %14.0f\n" tcpdump "$r" "$tw" "$tc" "$(div "$packets" "$tc")"
	printf "%-8s %5d %9s %9s %14.0f\n" extract "$r" "$ew" "$ec" "$(div "$packets" "$ec")"
	best_tw=$(min "$tw" "$best_tw") best_tc=$(min "$tc" "$best_tc")
	best_ew=$(min "$ew" "$best_ew") best_ec=$(min "$ec" "$best_ec")
done
"$tmp/netsentinel" extract "$tmp/bench.pcap" 2>&1 >/dev/null | tail -1
printf "best: extract %.0f packets/s wall, %.0f packets per CPU-second; extract/tcpdump: %sx wall, %sx CPU\n" \
	"$(div "$packets" "$best_ew")" "$(div "$packets" "$best_ec")" "$(div "$best_ew" "$best_tw")" "$(div "$best_ec" "$best_tc")"
