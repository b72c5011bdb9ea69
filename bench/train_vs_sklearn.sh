#!/bin/sh
# train_vs_sklearn.sh compares the training time of netsentinel's default
# detector (what 'netsentinel train' builds without flags: the 30-tree forest
# and the novelty part) with scikit-learn's
# RandomForestClassifier(n_estimators=100, n_jobs=2) fitted on the same rows,
# in one run on the same machine, and prints wall and CPU seconds and their
# ratio. Both sides train on every row of FILE.
#
# Usage (from the repository root):
#
#	bench/train_vs_sklearn.sh [FILE]
#
# FILE defaults to data/kddcup.data_10_percent.gz. Each side trains REPEAT
# times (default 3) and the fastest run counts, to damp the noise of other
# processes on the cores. The two sides alternate (ours, sklearn, ours, ...)
# so that a burst of load from elsewhere hits both.
#
# scikit-learn is installed with pip if python3 cannot import it.
set -eu

cd "$(dirname "$0")/.."
data=${1:-data/kddcup.data_10_percent.gz}
repeat=${REPEAT:-3}

python3 -c 'import sklearn' 2>/dev/null || pip install scikit-learn

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/trainbench" ./bench/trainbench

echo "data: $data   machine: $(nproc) cores, $(uname -m)   $(python3 -c 'import sklearn; print("scikit-learn", sklearn.__version__)')"
"$work/trainbench" -json -data "$data" -export "$work/rows.csv" >/dev/null
: >"$work/ours.json"
: >"$work/sk.json"
i=0
while [ "$i" -lt "$repeat" ]; do
	"$work/trainbench" -json -data "$data" >>"$work/ours.json"
	python3 bench/forest_sklearn.py --json --fit-only "$work/rows.csv" >>"$work/sk.json"
	i=$((i + 1))
done

python3 - "$work/ours.json" "$work/sk.json" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
sk = [json.loads(l) for l in open(sys.argv[2])]
o = {k: min(r[k] for r in ours) for k in ("train_seconds", "train_cpu_seconds", "forest_seconds", "forest_cpu_seconds")}
s = {k: min(r[k] for r in sk) for k in ("train_seconds", "train_cpu_seconds")}
print("%d rows; times are the best of %d runs" % (ours[0]["rows"], len(ours)))
print("netsentinel: %s" % ours[0]["config"])
print("sklearn:     %s" % sk[0]["config"])
print()
print("%-34s %12s %12s" % ("", "wall (s)", "CPU (s)"))
print("%-34s %12.2f %12.2f" % ("netsentinel train (default)", o["train_seconds"], o["train_cpu_seconds"]))
print("%-34s %12.2f %12.2f" % ("netsentinel forest alone", o["forest_seconds"], o["forest_cpu_seconds"]))
print("%-34s %12.2f %12.2f" % ("scikit-learn RF100 fit", s["train_seconds"], s["train_cpu_seconds"]))
print()
print("train / sklearn fit: %.2fx wall, %.2fx CPU" % (o["train_seconds"] / s["train_seconds"], o["train_cpu_seconds"] / s["train_cpu_seconds"]))
print("forest / sklearn fit: %.2fx wall, %.2fx CPU" % (o["forest_seconds"] / s["train_seconds"], o["forest_cpu_seconds"] / s["train_cpu_seconds"]))
PY
