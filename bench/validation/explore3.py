"""Per-service k-means prototypes: AUC vs prototype budget (exploration)."""
import time
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import roc_auc_score
import kdd

X, y = kdd.load("KDDTrain+.txt.gz")
F = kdd.novelty_features(X, service_weight=0.0)[:, :52]  # numeric + protocol + flag (service is the bucket)
svc = X[:, 2].astype(int)
FOLDS = {
    "r2l": [a for a in set(y) if kdd.CATS[a] == "r2l"],
    "u2r": [a for a in set(y) if kdd.CATS[a] == "u2r"],
    "probe": [a for a in set(y) if kdd.CATS[a] == "probe"],
    "dos": [a for a in set(y) if kdd.CATS[a] == "dos"],
    "mixA": ["satan", "back", "warezclient", "buffer_overflow"],
    "mixB": ["portsweep", "smurf", "guess_passwd", "rootkit"],
}
rng = np.random.default_rng(1)
nrm = y == "normal"
test = rng.random(len(y)) < 0.2
trn = nrm & ~test
mu = F[trn].mean(0); sd = np.maximum(F[trn].std(0), 0.05)
Z = (F - mu) / sd
tn = nrm & test
for budget in (128, 256, 512, 1024):
    t = time.time()
    counts = np.bincount(svc[trn], minlength=70)
    w = np.sqrt(counts); alloc = np.where(counts > 0, np.maximum(1, np.round(budget * w / w.sum())), 0).astype(int)
    d = np.full(len(y), np.inf)
    total = 0
    for s in range(70):
        if alloc[s] == 0: continue
        Zs = Z[trn & (svc == s)]
        k = min(alloc[s], len(Zs)); total += k
        if len(Zs) > 20000: Zs = Zs[rng.choice(len(Zs), 20000, replace=False)]
        C = KMeans(k, n_init=1, random_state=0, max_iter=30).fit(Zs).cluster_centers_
        q = np.where(svc == s)[0]
        for i in range(0, len(q), 20000):
            qq = q[i:i+20000]
            d[qq] = np.sqrt(((Z[qq][:, None, :] - C[None]) ** 2).sum(2).min(1))
    d[np.isinf(d)] = 1e3
    line = f"budget={budget} protos={total}"
    for fn, held in FOLDS.items():
        h = np.isin(y, held)
        line += f" {fn}={roc_auc_score(np.r_[np.zeros(tn.sum()), np.ones(h.sum())], np.r_[d[tn], d[h]]):.3f}"
    print(line, f"({time.time()-t:.0f}s)", flush=True)
