#!/usr/bin/env bash
# with-kafka.sh CMD [ARGS...]: run CMD with a real Apache Kafka broker up.
#
# Starts a broker with scripts/kafka.sh on a free port (KAFKA_PORT, default
# auto) in a fresh directory (KAFKA_DIR, default a temporary one), exports
#   NETSENTINEL_TEST_BROKERS=127.0.0.1:<port>
#   NETSENTINEL_TEST_KAFKA_SCRIPT=<absolute path of scripts/kafka.sh>
#   NETSENTINEL_TEST_KAFKA_DIR=<broker dir>
# runs CMD, always stops the broker (and removes a temporary dir), and exits
# with CMD's exit code.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_SH="$HERE/kafka.sh"
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

tmpdir=""
if [ -z "${KAFKA_DIR:-}" ]; then
  tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/netsentinel-kafka.XXXXXX")
  KAFKA_DIR="$tmpdir"
fi
cleanup() {
  local rc=$?
  "$KAFKA_SH" status --dir "$KAFKA_DIR" 2>/dev/null | sed 's/^/with-kafka: broker at exit: /' >&2 || true
  "$KAFKA_SH" stop --dir "$KAFKA_DIR" || true
  # Private brokers and clusters of tests that died before their cleanup (kafkatest).
  for d in "$KAFKA_DIR"/private/*/ "$KAFKA_DIR"/private/*/node*/; do
    [ -f "$d/kafka.pid" ] && "$KAFKA_SH" stop --kill --dir "$d" || true
  done
  if [ -n "$tmpdir" ]; then
    if [ "$rc" -ne 0 ] && [ -f "$tmpdir/kafka.log" ]; then
      echo "with-kafka: last lines of the broker log:" >&2
      tail -20 "$tmpdir/kafka.log" >&2 || true
    fi
    rm -rf "$tmpdir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$KAFKA_SH" start --dir "$KAFKA_DIR" --port "${KAFKA_PORT:-auto}"
NETSENTINEL_TEST_BROKERS=$("$KAFKA_SH" brokers --dir "$KAFKA_DIR")
export NETSENTINEL_TEST_BROKERS
export NETSENTINEL_TEST_KAFKA_SCRIPT="$KAFKA_SH"
export NETSENTINEL_TEST_KAFKA_DIR="$KAFKA_DIR"
echo "with-kafka: NETSENTINEL_TEST_BROKERS=$NETSENTINEL_TEST_BROKERS NETSENTINEL_TEST_KAFKA_DIR=$KAFKA_DIR" >&2
"$@"
