#!/usr/bin/env bash
# bench/sensor_drops.sh: does `netsentinel sensor` keep up with a SYN flood
# on the loopback? Counts the packets the kernel dropped (AF_PACKET
# statistics, the sensor's closing summary and netsentinel_sensor_kernel_drops_total).
#
# Runs as root in fresh network and PID namespaces (nothing leaves them):
# the embedded broker (`netsentinel broker`) on the namespace's
# 127.0.0.1:19092, then for each pacing in DROPS_RATES (hping3 -i values,
# default "u300 u50 u10 flood") a fresh sensor capturing lo while hping3
# sends a SYN flood to 127.0.10.1:80 (no listener: every SYN is answered
# by a RST, and each is a new connection record): DROPS_PACKETS packets
# (default 30000) at the paced rates, DROPS_FLOOD_SECS seconds (default 3)
# of --flood. Prints, per pacing: hping3's send rate, the packets the kernel
# counted for the socket (PACKET_STATISTICS: the dropped ones included) and
# those it dropped, the records published, and
# the sensor's CPU seconds. The rates depend on the machine and its load:
# quote them with the load average printed first. On the loopback the
# kernel passes each packet to the socket twice (outgoing and incoming; the
# sensor reads the incoming copy). Needs hping3 and kcat.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${NS_DROPS_INSIDE:-}" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	go build -o "$tmp/netsentinel" ./cmd/netsentinel
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
	NS_DROPS_INSIDE=1 NS_DROPS_BIN="$tmp/netsentinel" NS_DROPS_TMP="$tmp" \
		unshare --net --pid --fork --mount-proc --kill-child bash "$0"
	exit
fi

bin=$NS_DROPS_BIN
tmp=$NS_DROPS_TMP
packets=${DROPS_PACKETS:-30000}
flood_secs=${DROPS_FLOOD_SECS:-3}
ip link set lo up
"$bin" broker --listen 127.0.0.1:19092 >"$tmp/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	(exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null && break
	sleep 0.1
done

printf '| hping3 pacing | sent (packets/s) | kernel packets (incl. dropped) | kernel dropped | records | sensor CPU-s |\n|---|---:|---:|---:|---:|---:|\n'
for rate in ${DROPS_RATES:-u300 u50 u10 flood}; do
	log=$tmp/sensor-$rate.log
	# The sensor does not create its topic: a metadata request does.
	for _ in $(seq 1 50); do
		kcat -L -b 127.0.0.1:19092 -t "drops-$rate" 2>/dev/null | grep -q 'with [1-9][0-9]* partitions' && break
		sleep 0.1
	done
	/usr/bin/time -f "%U %S" -o "$tmp/time-$rate" "$bin" sensor --brokers 127.0.0.1:19092 --id "drops-$rate" \
		--topic "drops-$rate" --interface lo --listen none >"$log" 2>&1 &
	timer=$!
	for _ in $(seq 1 200); do
		grep -q "sensor capturing" "$log" 2>/dev/null && break
		sleep 0.05
	done
	t0=$(date +%s.%N)
	if [ "$rate" = flood ]; then
		timeout -s INT "$flood_secs" hping3 -S -p 80 -a 127.0.30.3 --flood 127.0.10.1 >"$tmp/hping3-$rate.log" 2>&1 || true
	else
		hping3 -S -p 80 -a 127.0.30.3 -c "$packets" -i "$rate" 127.0.10.1 >"$tmp/hping3-$rate.log" 2>&1 || true
	fi
	t1=$(date +%s.%N)
	sent=$(grep -oE '^[0-9]+ packets transmitted' "$tmp/hping3-$rate.log" | cut -d' ' -f1 || true)
	sleep 1
	sensor=$(pgrep -P "$timer") || { cat "$log" >&2; exit 1; }
	kill -INT "$sensor"
	wait "$timer" || true
	summary=$(grep -E '^sensor: [0-9]+ records' "$log") || { cat "$log" >&2; exit 1; }
	# "sensor: R records in T transactions; P packets, ...; kernel: K packets, D dropped; ..."
	records=$(sed -E 's/^sensor: ([0-9]+) records.*/\1/' <<<"$summary")
	kpackets=$(sed -E 's/.*kernel: ([0-9]+) packets.*/\1/' <<<"$summary")
	drops=$(sed -E 's/.*kernel: [0-9]+ packets, ([0-9]+) dropped.*/\1/' <<<"$summary")
	cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$tmp/time-$rate")
	pps=$(awk -v n="${sent:-0}" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
	printf '| %s | %s (%s) | %s | %s | %s | %s |\n' "$rate" "${sent:-?}" "$pps" "$kpackets" "$drops" "$records" "$cpu"
done
