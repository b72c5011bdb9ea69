#!/usr/bin/env bash
# scenario.sh OUT SECONDS PHASE: real services, normal users and attack tools on the
# loopback of a fresh network namespace, captured with tcpdump into OUT/capture.pcap.
# Run it only under `unshare --net` (scenario.Run does): it changes the namespace's
# routes and would bind ports 21, 25 and 80.
#
# PHASE "baseline" runs only the normal users; "attack" runs the normal users and,
# one after the other, every attack tool. Every actor has its own 127.0.0.0/8
# address: normal users 127.0.20.N, attack tools 127.0.30.N (roles.tsv lists them).
# Tools without a source-address option reach their own target address, whose local
# route names the tool's address as the source. periods.tsv says when each tool ran.
#
# With NS_LIVE_BIN set (the netsentinel binary) the traffic is also scored live: a
# Kafka broker (NS_LIVE_KAFKA: scripts/kafka.sh) on the namespace's 127.0.0.1:19092,
# `netsentinel sensor` capturing lo into its records topic and `netsentinel detect`
# (model NS_LIVE_MODEL, --alerts both) scoring them. After the run the sensor is
# stopped, detect is left to score every record, and the records, alerts and
# incidents topics are written to live-records.jsonl, live-alerts.jsonl and
# live-incidents.jsonl (kcat, read committed), and the alerts' Kafka timestamps to
# live-alert-times.txt. With NS_LIVE_LEARN=SECS too, detect
# learns the users' traffic for SECS (--learn, retraining on NS_LIVE_LEARN_DATA, with
# NS_LIVE_LEARN_ARGS) before the tools start, and the run lasts SECONDS after that.
# Run under `unshare --pid --fork` too (scenario.Run does): every process started
# here ends with the namespace.
set -euo pipefail
out=$1
secs=$2
phase=$3
py=/usr/bin/python3
mkdir -p "$out/www" "$out/ftp"
cd "$out"
log() { echo "scenario: $*" >&2; }

ip link set lo up
# Source addresses for tools that cannot bind one: target -> source.
for pair in 127.0.10.5:127.0.30.5 127.0.10.6:127.0.30.6; do
	ip route add local "${pair%%:*}/32" dev lo src "${pair##*:}" table local
done

# Files of varied sizes for HTTP and FTP downloads.
for kb in 1 4 16 64 256 1024; do
	head -c $((kb * 1024)) /dev/urandom >"www/f$kb.bin"
	cp "www/f$kb.bin" "ftp/f$kb.bin"
done
printf 'admin\nalice\n' >users.txt
{
	for i in $(seq 1 30); do echo "guess$i"; done
	echo secret
} >passwords.txt

pids=()
live_dir=""
# On exit, whatever is left ends with the namespace (this shell is its PID 1);
# cleanup does not wait for it.
cleanup() {
	touch users.stop
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "$live_dir" ]; then "$NS_LIVE_KAFKA" stop --kill --dir "$live_dir" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# Services on every loopback address.
(cd www && exec $py -m http.server --bind 0.0.0.0 80 >/dev/null 2>&1) &
pids+=($!)
$py - >/dev/null 2>&1 <<'EOF' &
import logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer
logging.disable(logging.CRITICAL)
a = DummyAuthorizer()
a.add_user("alice", "secret", "ftp", perm="elr")
a.add_anonymous("ftp")
h = FTPHandler
h.authorizer = a
h.auth_failed_timeout = 0.05
h.passive_ports = range(50000, 50200)
ThreadedFTPServer(("0.0.0.0", 21), h).serve_forever()
EOF
pids+=($!)
$py -c '
import asyncio, aiosmtpd.controller as c
class H:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
ctl = c.Controller(H(), hostname="0.0.0.0", port=25)
ctl.start()
import time
while True: time.sleep(3600)
' >/dev/null 2>&1 &
pids+=($!)

# Wait for the three services.
for port in 80 21 25; do
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
		sleep 0.05
	done
done

# The live path: broker, sensor and detector, all on this namespace's loopback.
brokers=127.0.0.1:19092
if [ -n "${NS_LIVE_BIN:-}" ]; then
	live_dir="$out/kafka"
	KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90} "$NS_LIVE_KAFKA" start --dir "$live_dir" --port 19092 --controller-port 19093 2>kafka-start.log ||
		{ cat kafka-start.log >&2; exit 1; }
	log "$(tail -1 kafka-start.log)"
	# Create the topics (a metadata request for a missing topic creates it
	# on this broker): detect then finds its input at once, and every topic
	# can be read at the end.
	for t in records alerts incidents; do
		for _ in $(seq 1 100); do
			kcat -L -b "$brokers" -t "netsentinel-$t" 2>/dev/null | grep -q 'with [1-9][0-9]* partitions' && break
			sleep 0.1
		done
	done
	"$NS_LIVE_BIN" sensor --brokers "$brokers" --id scenario --interface lo --listen none >sensor.log 2>&1 &
	sensor_pid=$!
	pids+=("$sensor_pid")
	for _ in $(seq 1 200); do
		grep -q "sensor capturing" sensor.log 2>/dev/null && break
		kill -0 "$sensor_pid" 2>/dev/null || { cat sensor.log >&2; exit 1; }
		sleep 0.05
	done
	learn=()
	if [ -n "${NS_LIVE_LEARN:-}" ]; then
		# shellcheck disable=SC2206 # NS_LIVE_LEARN_ARGS is a list of flags
		learn=(--learn "${NS_LIVE_LEARN}s" --learn-data "$NS_LIVE_LEARN_DATA" --learn-out "$out/learned.model" ${NS_LIVE_LEARN_ARGS:-})
	fi
	"$NS_LIVE_BIN" detect --brokers "$brokers" --group scenario --instance scenario --model "$NS_LIVE_MODEL" \
		--alerts both --listen 127.0.0.1:19108 "${learn[@]}" >detect.log 2>&1 &
	detect_pid=$!
	pids+=("$detect_pid")
fi

# The capture: headers and the first bytes of payload (FTP replies), bounded in
# packets.
tcpdump -i lo -n -s 256 -c 2000000 -w capture.pcap 2>tcpdump.log &
tcpdump_pid=$!
for _ in $(seq 1 100); do
	grep -q "listening on" tcpdump.log 2>/dev/null && break
	sleep 0.05
done

echo -e "address\trole" >roles.tsv
role() { echo -e "$1\t$2" >>roles.tsv; }

# Normal users: HTTP downloads, FTP logins and transfers, SMTP mail, until the end.
normal_user() {
	local addr=$1 n=0
	while [ ! -e users.stop ]; do
		n=$((n + 1))
		case $((RANDOM % 3)) in
		0)
			curl -s -o /dev/null --interface "$addr" "http://127.0.10.1/f$((1 << (2 * (RANDOM % 6))))".bin ||
				true
			;;
		1)
			$py - "$addr" <<'EOF' 2>>users.log || true
import ftplib, io, random, sys
f = ftplib.FTP(source_address=(sys.argv[1], 0), timeout=10)
f.connect("127.0.10.2", 21)
if random.random() < 0.3:
    f.login()
else:
    f.login("alice", "secret")
f.retrbinary("RETR f%d.bin" % random.choice([1, 4, 16, 64]), io.BytesIO().write)
f.quit()
EOF
			;;
		2)
			$py - "$addr" <<'EOF' 2>>users.log || true
import smtplib, sys
s = smtplib.SMTP("127.0.10.3", 25, source_address=(sys.argv[1], 0), timeout=10)
s.sendmail("user@example.org", ["admin@example.org"], "Subject: hello\r\n\r\n" + ("x" * 70 + "\r\n") * 30)
s.quit()
EOF
			;;
		esac
		sleep "0.$((RANDOM % 5))"
	done
}

rm -f users.stop
start=$(date +%s)
end=$((start + secs))
users=()
for i in 1 2 3 4; do
	role "127.0.20.$i" normal
	normal_user "127.0.20.$i" &
	users+=($!)
done

# Attack tools, all at once after a second, each bounded in packets and time.
tools=()
echo -e "role\tstart\tend" >periods.tsv
tool() {
	local addr=$1 name=$2
	shift 2
	role "$addr" "$name"
	log "$name from $addr"
	(
		s=$(date +%s.%N)
		timeout 30 "$@" >"$name.log" 2>&1 || true
		echo -e "$name\t$s\t$(date +%s.%N)" >>periods.tsv
	) &
	tools+=($!)
}
if [ "$phase" = attack ] && [ -n "${NS_LIVE_LEARN:-}" ]; then
	# detect learns the users' traffic first; the tools come once it scores
	# with the learned model, and the users go on for SECONDS after that.
	sleep "$NS_LIVE_LEARN"
	state=""
	for _ in $(seq 1 300); do
		kill -0 "$detect_pid" 2>/dev/null || { cat detect.log >&2; exit 1; }
		state=$(curl -s http://127.0.0.1:19108/metrics | awk '/^netsentinel_detect_learning\{/ && $2 == 1 { sub(/.*state="/, ""); sub(/".*/, ""); print }')
		case $state in learned | refused | failed | stopped) break ;; esac
		sleep 1
	done
	log "learning: $state ($(grep -cE 'learn' detect.log) log lines about it)"
	[ "$state" = learned ] || { grep -E 'learn' detect.log >&2; exit 1; }
	date +%s.%N >learned.ts
	end=$(($(date +%s) + secs))
fi
if [ "$phase" = attack ]; then
	sleep 1
	tool 127.0.30.1 nmap-syn-scan nmap -sS -Pn -n -e lo -S 127.0.30.1 --max-retries 0 -p 1-1000 127.0.10.1
	tool 127.0.30.2 fping-sweep fping -S 127.0.30.2 -g 127.0.11.0/25 -c 1 -r 0 -q
	tool 127.0.30.3 hping3-syn-flood hping3 -S -p 80 -a 127.0.30.3 -c 3000 -i u300 127.0.10.1
	tool 127.0.30.4 hping3-icmp-flood hping3 -1 -a 127.0.30.4 -c 3000 -i u300 127.0.10.4
	tool 127.0.30.5 hydra-ftp hydra -L users.txt -P passwords.txt -t 4 -w 5 -I ftp://127.0.10.5
	tool 127.0.30.6 slowhttptest-slowloris slowhttptest -H -c 100 -r 50 -i 3 -l 10 -p 2 -u http://127.0.10.6/
fi

if [ ${#tools[@]} -gt 0 ]; then wait "${tools[@]}" 2>/dev/null || true; fi
while [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
touch users.stop
wait "${users[@]}" 2>/dev/null || true
sleep 1
kill -INT "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
log "done in $(($(date +%s) - start))s; $(grep -E 'packets captured' tcpdump.log || true)"

if [ -n "${NS_LIVE_BIN:-}" ]; then
	# The sensor finishes the open connections and publishes them when it
	# stops; detect then scores until it has seen every record.
	kill -INT "$sensor_pid"
	wait "$sensor_pid" || { cat sensor.log >&2; exit 1; }
	summary=$(grep -E '^sensor: [0-9]+ records' sensor.log) || { cat sensor.log >&2; exit 1; }
	log "$summary"
	want=${summary#sensor: }
	want=${want%% *}
	scored=0
	for _ in $(seq 1 600); do
		scored=$(curl -s http://127.0.0.1:19108/metrics | awk '/^netsentinel_detect_records_total /{n += $2} END {printf "%d", n}')
		[ "$scored" -ge "$want" ] && break
		kill -0 "$detect_pid" 2>/dev/null || { cat detect.log >&2; exit 1; }
		sleep 0.1
	done
	log "detect scored $scored of $want records"
	kill -INT "$detect_pid"
	wait "$detect_pid" || { cat detect.log >&2; exit 1; }
	for t in records alerts incidents; do
		kcat -C -b "$brokers" -t "netsentinel-$t" -e -q -X isolation.level=read_committed >"live-$t.jsonl" 2>kcat.log ||
			{ cat kcat.log >&2; exit 1; }
	done
	# When each alert reached Kafka (ms since the epoch), for the delays.
	kcat -C -b "$brokers" -t netsentinel-alerts -e -q -X isolation.level=read_committed -f '%T\n' >live-alert-times.txt 2>kcat.log ||
		{ cat kcat.log >&2; exit 1; }
	"$NS_LIVE_KAFKA" stop --dir "$live_dir" >/dev/null 2>&1 || true
	live_dir=""
fi
