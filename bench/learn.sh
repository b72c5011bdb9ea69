#!/usr/bin/env bash
# bench/learn.sh: what detect --learn gives against train --baseline on the
# same records.
#
# Trains the default model on data/KDDTrain+.txt.gz (unless LEARN_MODEL names
# one), writes two synthetic captures of LEARN_PACKETS packets each (default
# 200000; bench/genpcap, seeds 1 and 2: HTTP sessions, DNS, SYN probes, pings
# from a few hundred client addresses), and extracts their connections. On
# the embedded broker it publishes the first capture's records, runs
# detect --learn LEARN_PERIOD (default 10s) --learn-data data/KDDTrain+.txt.gz
# until the learned model is in use (or refused), then runs the train command
# the log gives on the baseline detect wrote. It prints the training-data
# fingerprints of both models (equal when both trained on the same rows),
# the time each took, and the share of each capture's connections flagged by
# the default, learned and train --baseline models.
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${LEARN_PACKETS:-200000}
period=${LEARN_PERIOD:-10s}
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/netsentinel" ./cmd/netsentinel
go build -o "$tmp/genpcap" ./bench/genpcap
ns=$tmp/netsentinel
model=${LEARN_MODEL:-}
if [ -z "$model" ]; then
	model=$tmp/default.model
	echo "training the default model on data/KDDTrain+.txt.gz (set LEARN_MODEL to skip)" >&2
	"$ns" train --data data/KDDTrain+.txt.gz --out "$model" >/dev/null
fi
for s in 1 2; do
	"$tmp/genpcap" -n "$packets" -seed "$s" -o "$tmp/site$s.pcap"
	"$ns" extract "$tmp/site$s.pcap" >"$tmp/site$s.jsonl" 2>/dev/null
done
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ns" broker --listen "127.0.0.1:$port" >"$tmp/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	grep -q "listening\|127.0.0.1:$port" "$tmp/broker.log" && break
	sleep 0.1
done
"$ns" publish --brokers "127.0.0.1:$port" --topic learn-in --file "$tmp/site1.jsonl" >/dev/null 2>&1
"$ns" detect --brokers "127.0.0.1:$port" --topic learn-in --group learn --model "$model" --listen none --instance learn \
	--learn "$period" --learn-data data/KDDTrain+.txt.gz --learn-out "$tmp/learned.model" >"$tmp/detect.log" 2>&1 &
detect=$!
pids+=($detect)
for _ in $(seq 1800); do
	grep -q 'model learned\|level=ERROR' "$tmp/detect.log" && break
	sleep 0.2
done
kill -TERM "$detect"
wait "$detect" || true
grep -E 'learning period over|guard|baseline sample|retrained|check on|model learned|ERROR' "$tmp/detect.log" | sed 's/^time=[^ ]* //'
cmd=$(sed -n 's/.*train_command="netsentinel \(train [^"]*\)".*/\1/p' "$tmp/detect.log")
[ -n "$cmd" ] || { echo "no model learned" >&2; exit 1; }
/usr/bin/time -o "$tmp/time" -f "%e s wall, %U+%S CPU-s" "$ns" ${cmd/MODEL/$tmp/train.model} >"$tmp/train.out" 2>/dev/null
echo "train --baseline: $(cat "$tmp/time")"
grep baseline: "$tmp/train.out"
sha() { grep -ao '"training":{"rows":[0-9]*,"sha256":"[0-9a-f]\{12\}' "$1" | sed 's/.*"rows":\([0-9]*\),"sha256":"/\1 rows, data sha256 /'; }
echo "learned model:          $(sha "$tmp/learned.model")"
echo "train --baseline model: $(sha "$tmp/train.model")"
for s in 1 2; do
	n=$(wc -l <"$tmp/site$s.jsonl")
	for m in default learned train; do
		f=$model
		[ "$m" = default ] || f=$tmp/$m.model
		k=$("$ns" predict --model "$f" "$tmp/site$s.jsonl" | grep -c '"is_attack":true' || true)
		awk -v s="$s" -v m="$m" -v k="$k" -v n="$n" 'BEGIN { printf "capture %s (%s connections): %-8s model flags %6d (%.2f%%)\n", s, n, m, k, 100 * k / n }'
	done
done
