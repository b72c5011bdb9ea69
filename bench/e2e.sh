#!/usr/bin/env bash
# bench/e2e.sh: end-to-end benchmark of netsentinel publish → detect →
# outputs against a real Apache Kafka broker on this machine (broker, detector
# and load generator share its cores). Prints a table:
#
#   (a) sustained throughput: E2E_RECORDS records (KDDTrain+ looped) are
#       published into a 4-partition topic first, then `netsentinel detect`
#       (1 process, then 2 processes in one group) scores them all; records/s
#       from the first committed transaction to the last (detectors' /metrics
#       netsentinel_detect_records_total, polled every 20 ms);
#   (b) latency at a fixed offered rate (detect --alerts records: one alert
#       per attack record): `publish --rate E2E_RATE` for
#       E2E_SECONDS into a 4-partition topic with one detector running;
#       p50/p99/max from produce to the alert being read by a ReadCommitted
#       consumer ("visible") and to the detector producing it ("produced"),
#       see bench/e2e/main.go;
#   (c) peak RSS (VmHWM) and CPU seconds of each detector process, and the
#       broker JVM's RSS.
#
# Environment: E2E_RECORDS (default 1000000), E2E_RATE (20000), E2E_SECONDS
# (30), E2E_DETECT_FLAGS (extra detect flags, e.g. "--max-poll-records 2000"),
# E2E_ONLY (throughput|latency: run one part), E2E_BIN (a netsentinel binary
# to measure instead of a fresh `make build`), E2E_KEEP (keep the work
# directory), NETSENTINEL_BENCH_CACHE (model cache dir, default
# ${TMPDIR:-/tmp}/netsentinel-bench). The set-up (build, the model trained
# once with `train` defaults on data/KDDTrain+.txt.gz and cached, the broker
# with add.partitions.to.txn.retry.backoff.ms=1, clean-up) is bench/lib.sh's.
set -euo pipefail
N=${E2E_RECORDS:-1000000}
RATE=${E2E_RATE:-20000}
SECS=${E2E_SECONDS:-30}
ONLY=${E2E_ONLY:-}
read -r -a DFLAGS <<<"${E2E_DETECT_FLAGS:-}"
DATA=data/KDDTrain+.txt.gz
BENCH=e2e BENCH_BIN=${E2E_BIN:-} BENCH_KEEP=${E2E_KEEP:-}
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# status FIELD PID: a /proc/PID/status field in MiB.
status() { awk -v f="$1:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$2/status"; }

# detect NAME GROUP TOPIC PREFIX: starts a detector, sets DPID and DURL.
# The output topics are created first (1 partition, as auto-creation would),
# so that topic creation is not measured.
detect() {
  local port
  "$E2E" topic -brokers "$B" -partitions "${E2E_OUT_PARTITIONS:-1}" "$4.alerts" "$4.stats" "$4.dead"
  port=$("$E2E" freeport)
  "$NS" detect --brokers "$B" --topic "$3" --group "$2" --model "$MODEL" --instance "$1" --alerts records \
    --alerts-topic "$4.alerts" --stats-topic "$4.stats" --dead-letter-topic "$4.dead" \
    --listen "127.0.0.1:$port" --log-level warn "${DFLAGS[@]}" 2>>"$WORK/$1.log" &
  DPID=$!
  PIDS+=("$DPID")
  DURL="http://127.0.0.1:$port"
}
waitready() {
  local i
  for i in $(seq 300); do
    curl -fs "$1/-/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "detector at $1 not ready after 30 s"
  return 1
}

ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s | %s |' "$@")"); }

if [ "$ONLY" != latency ]; then
  # (a) throughput
  "$E2E" topic -brokers "$B" -partitions 4 tput.in
  log "publishing $N records"
  pub=$("$NS" publish --brokers "$B" --topic tput.in --file "$DATA" --loop --limit "$N")
  log "$pub"
  row "publish $N records (lz4, acks=all, idempotent), broker on the same cores" "$(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' <<<"$pub") records/s" "" ""

  for procs in 1 2; do
    urls=() dpids=()
    for i in $(seq "$procs"); do
      detect "t$procs-$i" "tput$procs" tput.in "tput$procs"
      urls+=("$DURL/metrics") dpids+=("$DPID")
    done
    log "detect, $procs process(es)"
    kc0=$(cpu "$KPID")
    res=$("$E2E" throughput -metrics "$(IFS=,; echo "${urls[*]}")" -n "$N")
    log "$res"
    kc=$(awk -v a="$kc0" -v b="$(cpu "$KPID")" 'BEGIN { printf "%.1f", b - a }')
    rss="" cpus=""
    for p in "${dpids[@]}"; do
      rss+="${rss:+ + }$(status VmHWM "$p") MiB"
      cpus+="${cpus:+ + }$(cpu "$p") s"
    done
    for p in "${dpids[@]}"; do stop "$p"; done
    rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$res")
    secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$res")
    wall=$(sed -n 's/.*wall_seconds=\([0-9.]*\).*/\1/p' <<<"$res")
    row "detect, $procs process(es) in one group, $N records backlog" "$rate records/s (${secs} s; ${wall} s incl. join)" "$rss" "$cpus; broker $kc s"
  done
fi

if [ "$ONLY" != throughput ]; then
  # (b) latency
  "$E2E" topic -brokers "$B" -partitions 4 lat.in
  detect lat-1 lat lat.in lat
  waitready "$DURL"
  "$E2E" latency -brokers "$B" -topic lat.alerts -skip 2s >"$WORK/lat.out" &
  lpid=$!
  PIDS+=("$lpid")
  log "publishing at $RATE records/s for $SECS s"
  kc0=$(cpu "$KPID")
  pub=$("$NS" publish --brokers "$B" --topic lat.in --file "$DATA" --loop --limit $((RATE * SECS)) --rate "$RATE")
  log "$pub"
  wait "$lpid"
  cat "$WORK/lat.out" >&2
  rss=$(status VmHWM "$DPID")
  c=$(cpu "$DPID")
  kc=$(awk -v a="$kc0" -v b="$(cpu "$KPID")" 'BEGIN { printf "%.1f", b - a }')
  stop "$DPID"
  vis=$(sed -n 's/^visible  //p' "$WORK/lat.out")
  prod=$(sed -n 's/^produced //p' "$WORK/lat.out")
  q() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
  row "latency at $RATE records/s offered for $SECS s, 1 detector: produce → alert read (ReadCommitted)" \
    "p50 $(q p50_ms "$vis") ms, p99 $(q p99_ms "$vis") ms, max $(q max_ms "$vis") ms" "$rss MiB" "$c s; broker $kc s"
  row "same run: produce → alert produced by the detector (before commit)" \
    "p50 $(q p50_ms "$prod") ms, p99 $(q p99_ms "$prod") ms, max $(q max_ms "$prod") ms" "" ""
fi

row "broker JVM (Kafka 4.3.1, -Xmx512m)" "" "RSS $(status VmRSS "$KPID") MiB now, peak $(status VmHWM "$KPID") MiB" "$(cpu "$KPID") s"

echo
echo "netsentinel end to end, $(nproc) cores, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "broker settings beyond scripts/kafka.sh: ${KAFKA_EXTRA_PROPS:-none}; detect flags: ${E2E_DETECT_FLAGS:-none}"
echo
echo "| run | result | detector peak RSS | CPU seconds |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
