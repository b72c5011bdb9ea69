#!/usr/bin/env bash
# deps.sh: install the system packages the tests need (idempotent).
#   - a Java 17+ runtime and Maven, to fetch and run the Apache Kafka broker
#     that scripts/kafka.sh starts for the integration tests;
#   - kcat, the independent Kafka client used by readiness probes and tests;
#   - chromium, the headless browser of the dashboard's browser tests;
#   - the real-traffic scenario's services, clients, attack tools and tcpdump.
# Needs root (or sudo) for apt-get; does nothing when all are present.
set -euo pipefail

need=()
java_major() {
  java -XshowSettings:properties -version 2>&1 |
    awk -F'= ' '/java.specification.version/ {split($2, v, "."); print v[1]}'
}
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  need+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v make >/dev/null 2>&1 || need+=(make)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The real-traffic scenario (internal/scenario): services, clients, attack
# tools and the capture, run inside a network namespace of the test's own.
for tool in ip:iproute2 tcpdump:tcpdump curl:curl nmap:nmap fping:fping hping3:hping3 \
	hydra:hydra slowhttptest:slowhttptest; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import pyftpdlib' >/dev/null 2>&1 || need+=(python3-pyftpdlib)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)

if [ ${#need[@]} -eq 0 ]; then
  echo "deps: java $(java_major), $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g'), kcat present"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root to install: ${need[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# Try without an update first (fast when the lists are fresh), then update.
if ! $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/netsentinel-deps.log 2>&1; then
  $SUDO apt-get update -q >>/tmp/netsentinel-deps.log 2>&1 || true
  if ! $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/netsentinel-deps.log 2>&1; then
    tail -30 /tmp/netsentinel-deps.log >&2
    echo "deps: apt-get install ${need[*]} failed" >&2
    exit 1
  fi
fi
echo "deps: installed ${need[*]}"
