# bench/lib.sh: the set-up that bench/e2e.sh and bench/incidents.sh share.
# Source it from a script running with `set -euo pipefail`, after setting
#
#   BENCH       the script's name (log prefix, work directory name),
#   BENCH_BIN   a netsentinel binary to measure ("" for a fresh `make build`),
#   BENCH_KEEP  non-empty to keep the work directory.
#
# It then
#   - changes to the repository root (ROOT);
#   - builds bin/netsentinel unless BENCH_BIN is set; NS is the binary measured;
#   - makes WORK, a temporary directory removed on exit, and builds bench/e2e
#     into $WORK/e2e (E2E: topic creation, free ports, the alert latency reader);
#   - trains the model once with `train` defaults on data/KDDTrain+.txt.gz and
#     caches it as MODEL=$CACHE/model.ns (CACHE: NETSENTINEL_BENCH_CACHE, default
#     ${TMPDIR:-/tmp}/netsentinel-bench), again only when the data is newer;
#   - starts a real Apache Kafka broker (scripts/kafka.sh) in $WORK/kafka: B is
#     its address, KPID its process;
#   - on exit stops every process listed in PIDS (append yours), then the broker.
#
# The broker runs with add.partitions.to.txn.retry.backoff.ms=1 (Kafka's
# default is 20): a transaction's first produce that reaches the broker while
# the previous transaction's markers are still being written is retried by
# the broker after that backoff, which at 20,000 records/s stalled ~15% of
# the detector's transactions by ~20 ms. KAFKA_EXTRA_PROPS overrides it
# (KAFKA_EXTRA_PROPS= for an untouched broker).
#
# Functions: log MSG..., cpu PID (user+system CPU seconds of a process),
# stop PID (SIGTERM, then wait for it).
export KAFKA_EXTRA_PROPS="${KAFKA_EXTRA_PROPS-add.partitions.to.txn.retry.backoff.ms=1}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE=${NETSENTINEL_BENCH_CACHE:-${TMPDIR:-/tmp}/netsentinel-bench}
NS=${BENCH_BIN:-bin/netsentinel}

log() { echo "$BENCH: $*" >&2; }
cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / t }' "/proc/$1/stat"; }
stop() { kill -TERM "$1"; wait "$1" || log "detector $1 exited with $?"; }

[ -n "$BENCH_BIN" ] || make -s build >&2
mkdir -p "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/netsentinel-$BENCH.XXXXXX")
E2E="$WORK/e2e"
go build -o "$E2E" ./bench/e2e
MODEL="$CACHE/model.ns"
if [ ! -s "$MODEL" ] || [ data/KDDTrain+.txt.gz -nt "$MODEL" ]; then
  log "training the model (cached in $MODEL)"
  "$NS" train --data data/KDDTrain+.txt.gz --out "$MODEL.tmp" >&2
  mv "$MODEL.tmp" "$MODEL"
fi

PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  scripts/kafka.sh stop --dir "$WORK/kafka" >&2 || true
  if [ -n "$BENCH_KEEP" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/kafka.sh start --dir "$WORK/kafka" --port auto >&2
B=$(scripts/kafka.sh brokers --dir "$WORK/kafka")
KPID=$(cat "$WORK/kafka/kafka.pid")
log "broker $B (pid $KPID)"
