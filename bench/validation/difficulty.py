"""False positives on unseen normal rows by NSL-KDD difficulty level
(forest P(normal) < 0.9 or novelty above its 2% threshold)."""
import gzip, os
import numpy as np
from sklearn.ensemble import RandomForestClassifier
import kdd
from novelty_ref import Novelty

X, y = kdd.load("KDDTrain+.txt.gz")
with gzip.open(os.path.join(kdd.ROOT, "data", "KDDTrain+.txt.gz"), "rt") as f:
    diff = np.array([int(l.rsplit(",", 1)[1]) for l in f])
rng = np.random.default_rng(3)
test = rng.random(len(y)) < 0.2
nrm = y == "normal"
cal = ~test & nrm & (rng.random(len(y)) < 0.1)
trn = ~test & ~cal
rf = RandomForestClassifier(50, n_jobs=2, random_state=0).fit(X[trn], y[trn])
pn = rf.predict_proba(X[test & nrm])[:, list(rf.classes_).index("normal")]
nov = Novelty().fit(X[trn & nrm], X[cal])
thr = np.quantile(nov.score(X[cal]), 0.98)
s = nov.score(X[test & nrm])
d = diff[test & nrm]
flag_f, flag_n = pn < 0.9, s > thr
print("difficulty  rows  share  FPR(forest<0.9)  FPR(novelty)  FPR(both)")
for lo, hi in ((0, 10), (10, 15), (15, 18), (18, 20), (20, 21), (21, 22)):
    m = (d >= lo) & (d < hi)
    print(f"{lo:2d}-{hi-1:2d}     {m.sum():5d}  {m.mean():.3f}  {flag_f[m].mean():.4f}  {flag_n[m].mean():.4f}  {(flag_f|flag_n)[m].mean():.4f}")
m = d < 21
print(f"all <21    {m.sum():5d}  {m.mean():.3f}  {flag_f[m].mean():.4f}  {flag_n[m].mean():.4f}  {(flag_f|flag_n)[m].mean():.4f}")
print(f"all        {len(d):5d}  1.000  {flag_f.mean():.4f}  {flag_n.mean():.4f}  {(flag_f|flag_n).mean():.4f}")
