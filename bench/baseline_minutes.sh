#!/usr/bin/env bash
# bench/baseline_minutes.sh [FLAGS]: the normal users' false-positive rate and
# every attack tool's detection with no baseline and with 1, 5 and 15 minutes
# of baseline (a separate capture of the normal users), on real traffic in a
# network namespace (internal/scenario; needs root and the scenario's Debian
# packages). About 17 minutes of capture plus training: run it with nohup.
# FLAGS go to bench/baselinemin (-out DIR keeps and reuses the captures,
# -minutes 1,5,15, -attack 40s, -holdout MIN, -baseline-repeat N, -extract-args '...',
# -train-args '...', -tag SUFFIX, -live-learn 1m: also a run scored live where detect
# learns the users' traffic first; needs Java and kcat).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/baselinemin "$@"
