#!/usr/bin/env bash
# bench/incidents.sh: what grouping verdicts into incidents saves, against a
# real Apache Kafka broker on this machine, in one run:
#
#   (a) INC_RECORDS records (default 1,000,000) of data/kddcup.data_10_percent.gz
#       (looped; no keys) are published into a 1-partition topic; the time
#       `kcat -C` needs to read them all from the broker is measured;
#   (b) `netsentinel detect --alerts MODE` scores the whole backlog, for MODE
#       in INC_MODES (default "incidents records"): wall time from the
#       process start to the group having committed every record (model
#       load and group join included), the detector's CPU seconds, and the
#       key+value bytes of every output topic (alerts, incidents, incident
#       changelog, stats, dead letters; read committed) against the input's;
#   (c) latency at INC_RATE records/s (default 20000) for INC_SECONDS (30),
#       in incidents mode and then, for comparison under the same load, in
#       records mode (record -> alert, bench/e2e's reader); incidents mode:
#       from an incident's first record (its Kafka timestamp) to its
#       "opened" message being readable (read committed), in incidents mode
#       with --incident-quiet INC_LAT_QUIET (default 2s, so that incidents
#       close and open again during the run: the KDD file repeats its keys).
#       The detector restores its (empty) state on assignment, before the
#       first record is published.
#
# Output topics, and the changelog (compacted), are created before each
# detector starts, so that topic creation is not measured.
#
# INC_DETECT_FLAGS adds detect flags; INC_ONLY (size|latency) runs one part;
# INC_BIN measures a given binary instead of a fresh `make build`; INC_KEEP
# keeps the work directory. The set-up (build, the model trained with `train`
# defaults on data/KDDTrain+.txt.gz and cached in NETSENTINEL_BENCH_CACHE,
# shared with bench/e2e.sh; the broker with
# add.partitions.to.txn.retry.backoff.ms=1; clean-up) is bench/lib.sh's.
set -euo pipefail
N=${INC_RECORDS:-1000000}
MODES=${INC_MODES:-incidents records}
RATE=${INC_RATE:-20000}
SECS=${INC_SECONDS:-30}
ONLY=${INC_ONLY:-}
read -r -a DFLAGS <<<"${INC_DETECT_FLAGS:-}"
DATA=data/kddcup.data_10_percent.gz
BENCH=incidents BENCH_BIN=${INC_BIN:-} BENCH_KEEP=${INC_KEEP:-}
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
T="$WORK/incidents"
go build -o "$T" ./bench/incidents

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | tail -1; }

# outputs PREFIX: creates a detector's output topics and changelog.
outputs() {
  "$E2E" topic -brokers "$B" -partitions 1 "$1.alerts" "$1.incidents" "$1.stats" "$1.dead"
  "$T" compacted -brokers "$B" "$1.changelog"
}

# detect MODE GROUP TOPIC PREFIX: starts a detector (outputs PREFIX first);
# sets DPID.
detect() {
  "$NS" detect --brokers "$B" --topic "$3" --group "$2" --model "$MODEL" --instance "$4" --alerts "$1" \
    --alerts-topic "$4.alerts" --incidents-topic "$4.incidents" --incidents-changelog-topic "$4.changelog" \
    --stats-topic "$4.stats" --dead-letter-topic "$4.dead" --listen none --log-level warn "${DFLAGS[@]}" 2>>"$WORK/$4.log" &
  DPID=$!
  PIDS+=("$DPID")
}

ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s |' "$@")"); log "${ROWS[-1]}"; }

if [ "$ONLY" != latency ]; then
  "$E2E" topic -brokers "$B" -partitions 1 in
  log "publishing $N records of $DATA"
  "$NS" publish --brokers "$B" --topic in --file "$DATA" --loop --limit "$N" --key none >&2
  inb=$("$T" bytes -brokers "$B" in | sed -n 's/^total bytes=//p')
  TIMEFORMAT='%R %U %S'
  kt=$({ time kcat -C -b "$B" -t in -o beginning -e -q >/dev/null; } 2>&1 | tail -1)
  kc=$(awk '{ print $1 }' <<<"$kt")
  kcpu=$(awk '{ printf "%.1f", $2 + $3 }' <<<"$kt")
  log "kcat -C: $kt (real user sys)"
  row "input: $N records, 1 partition" "kcat -C reads them in $kc s (CPU $kcpu s)" "$inb bytes"
  for mode in $MODES; do
    outputs "$mode"
    t0=$(now)
    detect "$mode" "g-$mode" in "$mode"
    "$T" wait -brokers "$B" -group "g-$mode" -topic in -n "$N" >/dev/null
    secs=$(since "$t0")
    c=$(cpu "$DPID")
    stop "$DPID"
    out=$("$T" bytes -brokers "$B" "$mode.alerts" "$mode.incidents" "$mode.changelog" "$mode.stats" "$mode.dead")
    log "$out"
    ob=$(sed -n 's/^total bytes=//p' <<<"$out")
    per=$(sed -n 's/^topic=[^.]*\.\([a-z]*\) records=\([0-9]*\) bytes=\([0-9]*\)/\1 \2 msgs \3 B/p' <<<"$out" | paste -sd';' -)
    row "detect --alerts $mode" "$secs s = $(awk -v a="$secs" -v b="$kc" 'BEGIN { printf "%.2f", a / b }')x kcat; CPU $c s" \
      "out $ob bytes = $(awk -v a="$ob" -v b="$inb" 'BEGIN { printf "%.2f", 100 * a / b }')% of input ($per)"
  done
fi

if [ "$ONLY" != size ]; then
  # The same offered load in both modes, one after the other, so that the
  # two latencies are measured under the same conditions.
  DFLAGS+=(--incident-quiet "${INC_LAT_QUIET:-2s}")
  for mode in incidents records; do
    "$E2E" topic -brokers "$B" -partitions 1 "lat$mode.in"
    outputs "lat$mode"
    detect "$mode" "lat$mode" "lat$mode.in" "lat$mode"
    sleep 3
    if [ "$mode" = incidents ]; then
      "$T" latency -brokers "$B" -topic "lat$mode.incidents" >"$WORK/lat.out" &
    else
      "$E2E" latency -brokers "$B" -topic "lat$mode.alerts" >"$WORK/lat.out" &
    fi
    lpid=$!
    PIDS+=("$lpid")
    log "publishing at $RATE records/s for $SECS s ($mode)"
    "$NS" publish --brokers "$B" --topic "lat$mode.in" --file "$DATA" --loop --limit $((RATE * SECS)) --rate "$RATE" --key none >&2
    wait "$lpid" || log "latency reader failed"
    lat=$(sed -n 's/^visible  //p; /^messages=/p' "$WORK/lat.out")
    c=$(cpu "$DPID")
    stop "$DPID"
    if [ "$mode" = incidents ]; then
      what="first record -> its incident's opened message read ($(sed 's/ p50.*//; s/.*opened=/opened /' <<<"$lat") incidents)"
    else
      what="record -> its alert read ($(sed -n 's/^alerts=\([0-9]*\).*/\1/p' "$WORK/lat.out") alerts)"
    fi
    row "latency at $RATE records/s for $SECS s, --alerts $mode: $what" \
      "p50 $(field p50_ms "$lat") ms, p99 $(field p99_ms "$lat") ms, max $(field max_ms "$lat") ms" "detector CPU $c s"
  done
fi

echo
echo "netsentinel incidents, $(nproc) cores, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "detect flags: ${INC_DETECT_FLAGS:-none}"
echo
echo "| run | time | bytes |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
