#!/bin/sh
# forest_vs_sklearn.sh compares netsentinel's random forest with
# scikit-learn's RandomForestClassifier(n_estimators=100, n_jobs=2) on the
# same file, the same stratified 80/20 split and the same machine, and
# prints training time, scoring throughput and validation accuracy
# (attack type and 5-category) side by side.
#
# Usage (from the repository root):
#
#	bench/forest_vs_sklearn.sh [FILE] [-- FORESTBENCH FLAGS...]
#
# FILE defaults to data/KDDTrain+.txt.gz; data/kddcup.data_10_percent.gz
# works too. Each tool trains and scores REPEAT times (default 3) and the
# fastest run counts, to damp the noise of other processes on the cores. Flags after -- go to bench/forestbench (e.g. -- -trees 100).
# HOLDOUT="back portsweep ..." adds a leave-attack-types-out comparison: each
# space-separated item (attack types joined by commas) is removed from the
# training rows and the figure is the fraction of its rows flagged as attacks.
#
# scikit-learn is installed with pip if python3 cannot import it.
set -eu

cd "$(dirname "$0")/.."
data=data/KDDTrain+.txt.gz
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
	data=$1
	shift
fi
[ "${1:-}" = "--" ] && shift

python3 -c 'import sklearn' 2>/dev/null || pip install scikit-learn

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/forestbench" ./bench/forestbench

name=$(basename "$data")
echo "data: $data   machine: $(nproc) cores, $(uname -m)   $(python3 -c 'import sklearn; print("scikit-learn", sklearn.__version__)')"
echo

# Our forest first (it also writes the split for scikit-learn).
repeat=${REPEAT:-3}
"$work/forestbench" -json -repeat "$repeat" -data "$data" -export "$work/split" "$@" >"$work/ours.json"
python3 bench/forest_sklearn.py --json --repeat "$repeat" --data "$name" "$work/split" >"$work/sk.json"

python3 - "$work/ours.json" "$work/sk.json" "$repeat" <<'PY'
import json, sys
ours = json.loads(open(sys.argv[1]).readline())
sk = json.loads(open(sys.argv[2]).readline())
print("80/20 stratified split: %d training rows, %d validation rows; times are the best of %s runs" % (ours["train_rows"], ours["test_rows"], sys.argv[3]))
print("netsentinel: %s" % ours["config"])
print("sklearn:     %s" % sk["config"])
print()
rows = [
    ("training time (wall, s)", "train_seconds", "%.2f"),
    ("training CPU time (s)", "train_cpu_seconds", "%.2f"),
    ("scoring (records/s, wall)", "score_records_per_s", "%.0f"),
    ("scoring (records per CPU-s)", "score_records_per_cpu_s", "%.0f"),
    ("attack-type accuracy", "attack_accuracy", "%.4f"),
    ("5-category accuracy", "category_accuracy", "%.4f"),
    ("tree nodes", "nodes", "%d"),
]
print("%-30s %14s %14s %10s" % ("", "netsentinel", "scikit-learn", "ratio"))
for label, key, fmt in rows:
    a, b = ours[key], sk[key]
    ratio = ""
    if key in ("train_seconds", "train_cpu_seconds") and a > 0:
        ratio = "%.1fx faster" % (b / a)
    elif key.startswith("score") and b > 0:
        ratio = "%.1fx" % (a / b)
    print("%-30s %14s %14s %10s" % (label, fmt % a, fmt % b, ratio))
PY

[ -n "${HOLDOUT:-}" ] && printf '\nleave-attack-types-out (train without the types, count their rows flagged as not normal):\n'
for h in ${HOLDOUT:-}; do
	"$work/forestbench" -json -data "$data" -holdout "$h" -export "$work/hold" "$@" >"$work/ours.json"
	python3 bench/forest_sklearn.py --json --data "$name" --holdout "$h" "$work/hold" >"$work/sk.json"
	python3 - "$work/ours.json" "$work/sk.json" <<'PY'
import json, sys
ours = json.loads(open(sys.argv[1]).readline())
sk = json.loads(open(sys.argv[2]).readline())
print("held out %-40s %6d rows  flagged: netsentinel %.4f  sklearn %.4f   normal flagged: %.4f / %.4f" % (
    ours["held_out"], ours["held_out_rows"], ours.get("held_out_flagged", 0), sk["held_out_flagged"],
    ours.get("normal_flagged", 0), sk["normal_flagged"]))
PY
done
