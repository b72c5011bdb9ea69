#!/usr/bin/env bash
# kafka.sh: a single-node Apache Kafka broker (KRaft, combined broker and
# controller) on 127.0.0.1, built from Maven Central jars, for the
# integration tests. No Docker, no tarball.
#
# Usage:
#   scripts/kafka.sh fetch                      fetch the jars into the cache
#   scripts/kafka.sh start [--dir DIR] [--port PORT|auto] [--controller-port PORT]
#   scripts/kafka.sh stop [--dir DIR] [--kill]  SIGTERM (SIGKILL with --kill or after 30 s)
#   scripts/kafka.sh restart [--dir DIR] [--kill]   stop, then start on the same dir and ports
#   scripts/kafka.sh status [--dir DIR]         "up 127.0.0.1:PORT pid N rss M MiB", or exit 1
#   scripts/kafka.sh brokers [--dir DIR]        print 127.0.0.1:PORT
#   scripts/kafka.sh cluster --dir DIR [--nodes N]  start an N-node KRaft cluster (default 3):
#                                               node I in DIR/nodeI (each node dir works with
#                                               start/stop/restart/status/brokers); prints the
#                                               comma-separated bootstrap list
#   scripts/kafka.sh cluster-stop --dir DIR [--kill]   stop every node of the cluster
#
# A cluster's nodes are combined brokers and controllers on free port pairs,
# with replication factor 3 (or N if smaller) for every topic and internal
# topic and min.insync.replicas 2 (1 for a single node).
#
# DIR holds server.properties, data/ (the log dirs and KRaft metadata),
# kafka.log, kafka.pid and state (the ports); default
# ${TMPDIR:-/tmp}/netsentinel-kafka. --port auto picks a random free port
# pair in 20000-31999; restart keeps the ports. start formats DIR on first use and refuses to run over a port in use.
# It returns only once the broker answers the Kafka protocol (kcat -L, or the
# "Kafka Server started" log line without kcat), or fails after
# KAFKA_START_TIMEOUT seconds (default 120) printing the log tail.
#
# Environment: KAFKA_CDS=1 turns on the class-data-sharing archive (see
# cds_opts; off by default: concurrent brokers mapping one archive crashed
# the JVM with SIGBUS here), KAFKA_VERSION (default 4.3.1; needs Java 17+), KAFKA_HEAP
# (default "-Xms128m -Xmx512m"), KAFKA_EXTRA_PROPS (key=value lines appended to
# server.properties), KAFKA_CACHE (jar cache, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/netsentinel/kafka-$KAFKA_VERSION).
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.3.1}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms128m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-bmV0c2VudGluZWwta2Fmaw}" # any 22-char base64url UUID
KAFKA_CACHE="${KAFKA_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/netsentinel/kafka-$KAFKA_VERSION}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIBS="$KAFKA_CACHE/libs"

DIR="${KAFKA_DIR:-${TMPDIR:-/tmp}/netsentinel-kafka}"
PORT=""
CPORT=""
KILL=0
NODES=3
# One node of a cluster: its id, the controller quorum and the replication
# settings (kept in DIR/state). A single broker is node 1 of a quorum of one.
NODE_ID=1
VOTERS=""
RF=1
MIN_ISR=1

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

now_ms() { date +%s%3N; }

# fetch copies kafka_2.13 and its runtime dependencies into $LIBS, once.
fetch() {
  if [ -f "$LIBS/.complete" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (run scripts/deps.sh)"
  local t0 tmp
  t0=$(now_ms)
  mkdir -p "$KAFKA_CACHE"
  tmp=$(mktemp -d "$KAFKA_CACHE/libs.tmp.XXXXXX")
  log "fetching Apache Kafka $KAFKA_VERSION broker jars from Maven Central into $LIBS"
  if ! mvn -q -B -Dstyle.color=never -f "$HERE/kafka/pom.xml" \
      -Dkafka.version="$KAFKA_VERSION" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_CACHE/fetch.log" 2>&1; then
    tail -40 "$KAFKA_CACHE/fetch.log" >&2
    rm -rf "$tmp"
    die "mvn copy-dependencies failed (log: $KAFKA_CACHE/fetch.log)"
  fi
  [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
  ls "$tmp"/log4j-core-*.jar >/dev/null 2>&1 || die "log4j-core missing after fetch"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  touch "$LIBS/.complete"
  log "fetched $(ls "$LIBS" | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $(( ($(now_ms) - t0) )) ms"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port prints a random port P with P and P+1 free, from 20000-31999
# (below Linux's ephemeral range). Random rather than sequential so that
# brokers started side by side (parallel test runs, a broker restarted while
# another run starts) do not take each other's ports.
pick_port() {
  local p i
  for ((i = 0; i < 50; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 6000 * 2))
    if ! port_in_use "$p" && ! port_in_use $((p + 1)); then
      echo "$p"
      return 0
    fi
  done
  die "no free port pair found in 20000-31999"
}

# alive succeeds while process $1 exists and is not a zombie (a killed
# broker whose parent has not reaped it yet).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# pid prints the broker's pid if it is running from $DIR.
pid() {
  local p
  [ -f "$DIR/kafka.pid" ] || return 1
  p=$(cat "$DIR/kafka.pid")
  [ -n "$p" ] && alive "$p" || return 1
  # Guard against a recycled pid: the process must be our broker.
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$DIR/server.properties" || return 1
  echo "$p"
}

load_state() {
  if [ -f "$DIR/state" ]; then
    # shellcheck disable=SC1091
    . "$DIR/state"
    if [ -z "$PORT" ]; then
      PORT="$STATE_PORT"
      CPORT="${CPORT:-$STATE_CPORT}"
    fi
    NODE_ID="${STATE_NODE_ID:-1}"
    VOTERS="${STATE_VOTERS:-}"
    RF="${STATE_RF:-1}"
    MIN_ISR="${STATE_MIN_ISR:-1}"
  fi
}

# ready succeeds once the broker answers a Kafka metadata request.
ready() {
  if command -v kcat >/dev/null 2>&1; then
    kcat -b "127.0.0.1:$PORT" -L -m 2 >/dev/null 2>&1
  else
    # The log is appended across restarts: look after the last start mark.
    awk '/^=== start/ {f = 0} /Kafka Server started/ {f = 1} END {exit !f}' "$DIR/kafka.log" 2>/dev/null
  fi
}

write_config() {
  mkdir -p "$DIR/data"
  cat >"$DIR/server.properties" <<EOF
# Written by scripts/kafka.sh: a combined broker+controller for tests.
process.roles=broker,controller
node.id=$NODE_ID
# Static quorum: format without --standalone.
controller.quorum.voters=${VOTERS:-1@127.0.0.1:$CPORT}
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=true
delete.topic.enable=true
# Replication: 1 on a single node (transactions work), 3 with
# min.insync.replicas 2 in a cluster.
offsets.topic.replication.factor=$RF
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$RF
transaction.state.log.min.isr=$MIN_ISR
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=$RF
share.coordinator.state.topic.min.isr=$MIN_ISR
min.insync.replicas=$MIN_ISR
default.replication.factor=$RF
group.initial.rebalance.delay.ms=0
# Fast recovery after a kill -9: the controller fences the dead broker's old
# registration once its session expires (default 9 s). A cluster's
# controller tracks every node's session, so there it is less eager: 3 s
# timed out live brokers of a three-node cluster on a loaded machine.
broker.session.timeout.ms=$([ -n "$VOTERS" ] && echo 6000 || echo 3000)
broker.heartbeat.interval.ms=$([ -n "$VOTERS" ] && echo 1000 || echo 500)
# Small test machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
  # Extra settings (one key=value a line), e.g. for benchmarks.
  if [ -n "${KAFKA_EXTRA_PROPS:-}" ]; then
    printf '# KAFKA_EXTRA_PROPS\n%s\n' "$KAFKA_EXTRA_PROPS" >>"$DIR/server.properties"
  fi
  cat >"$DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = OUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
EOF
  printf 'STATE_PORT=%s\nSTATE_CPORT=%s\nSTATE_NODE_ID=%s\nSTATE_VOTERS=%s\nSTATE_RF=%s\nSTATE_MIN_ISR=%s\n' \
    "$PORT" "$CPORT" "$NODE_ID" "$VOTERS" "$RF" "$MIN_ISR" >"$DIR/state"
}

java_opts() {
  # shellcheck disable=SC2086
  echo "$1 -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -XX:ErrorFile=$DIR/hs_err_%p.log -Xshare:auto -Djava.awt.headless=true -Dlog4j2.configurationFile=$DIR/log4j2.properties"
}

JAVA_RUNTIME=""
check_java() {
  command -v java >/dev/null 2>&1 || die "java not found (run scripts/deps.sh)"
  local props major
  props=$(java -XshowSettings:properties -version 2>&1)
  major=$(awk -F'= ' '/java.specification.version/ {split($2, v, "."); print v[1]}' <<<"$props")
  JAVA_RUNTIME=$(awk -F'= ' '/java.runtime.version/ {print $2}' <<<"$props" | tr -c 'A-Za-z0-9.+_\n-' _)
  [ "${major:-0}" -ge 17 ] || die "Kafka $KAFKA_VERSION needs Java 17+, have ${major:-none}"
}

# cds_opts prints the JVM flags for a class-data-sharing archive of the
# broker's classes, which saves 1-2 s per start: use the cached archive for
# this Java runtime, or, if there is none yet, have this broker write one at
# exit into DIR (stop moves it into the cache after a clean SIGTERM exit).
cds_opts() {
  [ "${KAFKA_CDS:-0}" = 1 ] && [ -n "$JAVA_RUNTIME" ] || return 0
  local archive="$KAFKA_CACHE/broker-$JAVA_RUNTIME.jsa"
  if [ -f "$archive" ]; then
    echo "-XX:SharedArchiveFile=$archive -Xlog:cds*=off"
  else
    rm -f "$DIR/cds.jsa"
    echo "-XX:ArchiveClassesAtExit=$DIR/cds.jsa -Xlog:cds*=off"
    echo "$archive" >"$DIR/cds.target"
  fi
}

start_once() {
  local p
  for p in "$PORT" "$CPORT"; do
    port_in_use "$p" && { log "port $p already in use"; return 2; }
  done
  write_config
  if [ ! -f "$DIR/data/meta.properties" ]; then
    # shellcheck disable=SC2046
    java $(java_opts "-Xmx256m") -cp "$LIBS/*" kafka.tools.StorageTool format \
      -t "$KAFKA_CLUSTER_ID" -c "$DIR/server.properties" --ignore-formatted \
      >>"$DIR/kafka.log" 2>&1 || { tail -30 "$DIR/kafka.log" >&2; die "storage format failed"; }
  fi
  launch
  wait_ready
}

# launch starts the JVM of $DIR in the background.
launch() {
  local p
  echo "=== start $(date -u +%FT%TZ) port $PORT controller $CPORT" >>"$DIR/kafka.log"
  # shellcheck disable=SC2046
  nohup java $(java_opts "$KAFKA_HEAP") $(cds_opts) -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" \
    >>"$DIR/kafka.log" 2>&1 </dev/null &
  p=$!
  echo "$p" >"$DIR/kafka.pid"
  cp "/proc/$p/cmdline" "$DIR/kafka.cmdline" 2>/dev/null || true
}

# wait_ready waits until the broker of $DIR answers; it returns 2 for a
# port clash and 1 for other failures.
wait_ready() {
  local p t0 elapsed
  p=$(cat "$DIR/kafka.pid")
  t0=$(now_ms)
  until ready; do
    if ! alive "$p"; then
      log "broker exited during startup; last lines of $DIR/kafka.log:"
      tail -40 "$DIR/kafka.log" >&2
      rm -f "$DIR/kafka.pid"
      if grep -q "Address already in use" <(tail -40 "$DIR/kafka.log"); then return 2; fi
      if tr '\0' ' ' <"$DIR/kafka.cmdline" 2>/dev/null | grep -q SharedArchiveFile &&
        grep -q "fatal error has been detected" <(tail -40 "$DIR/kafka.log"); then
        log "the JVM crashed with the class-data-sharing archive; removing it and retrying"
        rm -f "$KAFKA_CACHE"/broker-*.jsa
        return 2
      fi
      return 1
    fi
    elapsed=$(( ($(now_ms) - t0) / 1000 ))
    if [ "$elapsed" -ge "$KAFKA_START_TIMEOUT" ]; then
      log "broker not ready after ${KAFKA_START_TIMEOUT}s; last lines of $DIR/kafka.log:"
      tail -40 "$DIR/kafka.log" >&2
      stop
      return 1
    fi
    sleep 0.2
  done
  log "ready on 127.0.0.1:$PORT (pid $p, Kafka $KAFKA_VERSION) in $(( $(now_ms) - t0 )) ms"
}

start() {
  local t0 rc auto=0 try
  t0=$(now_ms)
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  if p=$(pid); then
    load_state
    log "already running on 127.0.0.1:$PORT (pid $p)"
    return 0
  fi
  load_state
  check_java
  fetch
  [ -n "$PORT" ] || PORT=9092
  [ "$PORT" = auto ] && auto=1
  for try in 1 2 3; do
    if [ "$auto" = 1 ]; then
      PORT=$(pick_port)
      CPORT=$((PORT + 1))
    fi
    [ -n "$CPORT" ] || CPORT=$((PORT + 1))
    rc=0
    start_once || rc=$?
    if [ "$rc" = 0 ]; then
      log "start took $(( $(now_ms) - t0 )) ms in total"
      return 0
    fi
    [ "$rc" = 2 ] || break
    if [ "$auto" = 1 ]; then
      log "port clash, retrying with another port (try $try)"
    else
      log "port $PORT or $CPORT busy, retrying in 5s (try $try)"
      sleep 5
    fi
  done
  die "could not start the broker (dir $DIR)"
}

# cluster starts NODES nodes in DIR/node1..N on free port pairs and prints
# the bootstrap list once every node answers.
cluster() {
  local base="$DIR" i ports=() cports=() voters="" list="" rf min_isr
  mkdir -p "$base"
  base="$(cd "$base" && pwd)"
  check_java
  fetch
  rf=$((NODES < 3 ? NODES : 3))
  min_isr=$((rf > 1 ? 2 : 1))
  for ((i = 1; i <= NODES; i++)); do
    DIR="$base/node$i"
    if [ -f "$DIR/state" ]; then
      load_state
    else
      PORT=$(pick_port)
      while [[ " ${ports[*]} ${cports[*]} " == *" $PORT "* ]] || [[ " ${ports[*]} ${cports[*]} " == *" $((PORT + 1)) "* ]]; do
        PORT=$(pick_port)
      done
      CPORT=$((PORT + 1))
    fi
    ports+=("$PORT")
    cports+=("$CPORT")
    voters="${voters:+$voters,}$i@127.0.0.1:$CPORT"
    list="${list:+$list,}127.0.0.1:$PORT"
  done
  for ((i = 1; i <= NODES; i++)); do
    DIR="$base/node$i"
    mkdir -p "$DIR"
    if pid >/dev/null; then continue; fi
    PORT=${ports[$((i - 1))]} CPORT=${cports[$((i - 1))]} NODE_ID=$i VOTERS=$voters RF=$rf MIN_ISR=$min_isr
    for p in "$PORT" "$CPORT"; do
      port_in_use "$p" && die "port $p already in use"
    done
    write_config
    if [ ! -f "$DIR/data/meta.properties" ]; then
      # shellcheck disable=SC2046
      java $(java_opts "-Xmx256m") -cp "$LIBS/*" kafka.tools.StorageTool format \
        -t "$KAFKA_CLUSTER_ID" -c "$DIR/server.properties" --ignore-formatted \
        >>"$DIR/kafka.log" 2>&1 || { tail -30 "$DIR/kafka.log" >&2; die "storage format failed ($DIR)"; }
    fi
    launch
  done
  for ((i = 1; i <= NODES; i++)); do
    DIR="$base/node$i"
    load_state
    wait_ready || die "node $i of the cluster in $base did not start"
  done
  echo "$list"
}

cluster_stop() {
  local base="$DIR" d
  for d in "$base"/node*/; do
    [ -d "$d" ] || continue
    DIR="${d%/}"
    PORT=""
    load_state
    stop
  done
}

stop() {
  local p i sig=TERM t0
  p=$(pid) || { rm -f "$DIR/kafka.pid"; return 0; }
  t0=$(now_ms)
  [ "$KILL" = 1 ] && sig=KILL
  kill -"$sig" "$p" 2>/dev/null || true
  for ((i = 0; i < KAFKA_STOP_TIMEOUT * 10; i++)); do
    alive "$p" || break
    sleep 0.1
  done
  if alive "$p"; then
    log "broker (pid $p) still running after ${KAFKA_STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$p" 2>/dev/null || true
    sig=KILL
    for ((i = 0; i < 100; i++)); do
      alive "$p" || break
      sleep 0.1
    done
  fi
  rm -f "$DIR/kafka.pid"
  echo "=== stopped (SIG$sig) $(date -u +%FT%TZ)" >>"$DIR/kafka.log"
  if [ -f "$DIR/cds.target" ]; then
    # Keep the archive only if the JVM exited cleanly and can map it.
    if [ "$sig" = TERM ] && [ -s "$DIR/cds.jsa" ] &&
      java -XX:SharedArchiveFile="$DIR/cds.jsa" -Xshare:on -Xlog:cds*=off \
        -cp "$LIBS/*" -version >/dev/null 2>&1; then
      mv -f "$DIR/cds.jsa" "$(cat "$DIR/cds.target")" 2>/dev/null || true
    fi
    rm -f "$DIR/cds.jsa" "$DIR/cds.target"
  fi
  log "stopped pid $p with SIG$sig in $(( $(now_ms) - t0 )) ms"
}

status() {
  local p rss
  load_state
  if p=$(pid) && ready; then
    rss=$(awk '/^VmRSS/ {print int($2/1024)}' "/proc/$p/status" 2>/dev/null || echo '?')
    echo "up 127.0.0.1:$PORT pid $p rss ${rss} MiB dir $DIR"
    return 0
  fi
  echo "down (dir $DIR)"
  return 1
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --dir=*) DIR="${1#*=}"; shift ;;
    --port) PORT="$2"; shift 2 ;;
    --port=*) PORT="${1#*=}"; shift ;;
    --controller-port) CPORT="$2"; shift 2 ;;
    --controller-port=*) CPORT="${1#*=}"; shift ;;
    --kill) KILL=1; shift ;;
    --nodes) NODES="$2"; shift 2 ;;
    --nodes=*) NODES="${1#*=}"; shift ;;
    *) die "unknown argument $1" ;;
  esac
done
if [ -d "$DIR" ]; then DIR="$(cd "$DIR" && pwd)"; fi

case "$cmd" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  restart) load_state; stop; start ;;
  status) status ;;
  brokers) load_state; [ -n "$PORT" ] || die "no broker state in $DIR"; echo "127.0.0.1:$PORT" ;;
  cluster) cluster ;;
  cluster-stop) cluster_stop ;;
  *) sed -n '2,35p' "$0" >&2; exit 2 ;;
esac
