"""scikit-learn side of bench/forest_vs_sklearn.sh.

With --fit-only FILE (bench/train_vs_sklearn.sh) it only fits the forest on
every row of FILE (trainbench -export's CSV) and prints the fit time.

Otherwise it reads the split that `forestbench -export DIR` wrote (DIR/train.csv and
DIR/test.csv: 41 numeric features, symbolic ones as netsentinel's codes, then
the label), trains RandomForestClassifier(n_estimators=100, n_jobs=2) and
prints the same figures as forestbench: training time (wall and CPU),
scoring throughput, attack-type and 5-category accuracy.
"""

import argparse
import csv
import gzip
import json
import os
import time

import numpy as np
from sklearn.ensemble import RandomForestClassifier


def load(path):
    X, y = [], []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            X.append([float(v) for v in row[:41]])
            y.append(row[41])
    return np.asarray(X, dtype=np.float32), np.asarray(y)


def categories(path):
    cat = {"normal": "normal"}
    with gzip.open(path, "rt") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                cat[parts[0]] = parts[1]
    return cat


def fit_only(args):
    X, y = load(args.dir)
    wall = cpu = float("inf")
    for _ in range(max(1, args.repeat)):
        clf = RandomForestClassifier(n_estimators=args.trees, n_jobs=args.jobs, random_state=args.seed)
        c0, t0 = time.process_time(), time.perf_counter()
        clf.fit(X, y)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    print(json.dumps({
        "tool": "sklearn", "rows": len(y), "train_seconds": wall, "train_cpu_seconds": cpu,
        "config": f"RandomForestClassifier(n_estimators={args.trees}, n_jobs={args.jobs})",
    }))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", help="directory with train.csv and test.csv (with --fit-only: one CSV file)")
    ap.add_argument("--fit-only", action="store_true", help="fit on every row of the CSV file DIR and report the fit time only")
    ap.add_argument("--categories", default="data/kddcup99_attack_categories.txt.gz")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="train and score n times, report the fastest")
    ap.add_argument("--holdout", default="", help="attack types held out of train.csv (test.csv holds their rows, normal.csv the normal test rows)")
    args = ap.parse_args()

    if args.fit_only:
        fit_only(args)
        return
    Xtr, ytr = load(os.path.join(args.dir, "train.csv"))
    Xte, yte = load(os.path.join(args.dir, "test.csv"))
    cat = categories(args.categories)

    train_wall = train_cpu = score_wall = score_cpu = float("inf")
    for _ in range(max(1, args.repeat)):
        clf = RandomForestClassifier(n_estimators=args.trees, n_jobs=args.jobs, random_state=args.seed)
        c0, t0 = time.process_time(), time.perf_counter()
        clf.fit(Xtr, ytr)
        train_wall, train_cpu = min(train_wall, time.perf_counter() - t0), min(train_cpu, time.process_time() - c0)
    for _ in range(max(1, args.repeat)):
        c0, t0 = time.process_time(), time.perf_counter()
        proba = clf.predict_proba(Xte)
        score_wall, score_cpu = min(score_wall, time.perf_counter() - t0), min(score_cpu, time.process_time() - c0)
    pred = clf.classes_[np.argmax(proba, axis=1)]

    if args.holdout:
        Xn, _ = load(os.path.join(args.dir, "normal.csv"))
        pn = clf.classes_[np.argmax(clf.predict_proba(Xn), axis=1)]
        r = {
            "tool": "sklearn", "data": args.data, "mode": "holdout", "held_out": args.holdout,
            "train_rows": len(ytr), "test_rows": len(yte), "held_out_rows": len(yte),
            "train_seconds": train_wall, "train_cpu_seconds": train_cpu,
            "held_out_flagged": float(np.mean(pred != "normal")),
            "normal_flagged": float(np.mean(pn != "normal")),
        }
        if args.json:
            print(json.dumps(r))
        else:
            print("holdout    sklearn  train %7.2fs  held out %s: %d rows, %.4f flagged as attacks; normal test rows flagged %.4f" % (
                train_wall, args.holdout, len(yte), r["held_out_flagged"], r["normal_flagged"]))
        return

    attack_acc = float(np.mean(pred == yte))
    cat_acc = float(np.mean([cat.get(p, "unknown") == cat.get(t, "unknown") for p, t in zip(pred, yte)]))
    nodes = int(sum(e.tree_.node_count for e in clf.estimators_))
    r = {
        "tool": "sklearn", "data": args.data, "mode": "80/20",
        "train_rows": len(ytr), "test_rows": len(yte),
        "config": f"RandomForestClassifier(n_estimators={args.trees}, n_jobs={args.jobs})",
        "train_seconds": train_wall, "train_cpu_seconds": train_cpu,
        "score_records_per_s": len(yte) / score_wall,
        "score_records_per_cpu_s": len(yte) / score_cpu if score_cpu > 0 else 0,
        "attack_accuracy": attack_acc, "category_accuracy": cat_acc, "nodes": nodes,
    }
    if args.json:
        print(json.dumps(r))
    else:
        print("%-10s %-8s train %7.2fs (cpu %6.2fs)  score %9.0f rec/s (%9.0f rec/cpu-s)  attack acc %.4f  5-cat acc %.4f  nodes %d" % (
            r["mode"], "sklearn", train_wall, train_cpu, r["score_records_per_s"], r["score_records_per_cpu_s"],
            attack_acc, cat_acc, nodes))


if __name__ == "__main__":
    main()
