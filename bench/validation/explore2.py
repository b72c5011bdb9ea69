"""How small can the kNN reference set be? (exploration)"""
import time
import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
import kdd

X, y = kdd.load("KDDTrain+.txt.gz")
F = kdd.novelty_features(X)
FOLDS = {
    "r2l": [a for a in set(y) if kdd.CATS[a] == "r2l"],
    "u2r": [a for a in set(y) if kdd.CATS[a] == "u2r"],
    "probe": [a for a in set(y) if kdd.CATS[a] == "probe"],
    "mixA": ["satan", "back", "warezclient", "buffer_overflow"],
    "mixB": ["portsweep", "smurf", "guess_passwd", "rootkit"],
}
rng = np.random.default_rng(1)
nrm = y == "normal"
test = rng.random(len(y)) < 0.2
Fn = F[nrm & ~test]
mu = Fn.mean(0); sd = np.maximum(Fn.std(0), 0.05)
Z = (F - mu) / sd
Zn = Z[nrm & ~test]
print("unique normal rows", len(np.unique(np.round(Zn, 3), axis=0)), "of", len(Zn))
tn = nrm & test
ref = {}
for n in (50000, 20000, 5000, 2000):
    ref[f"rand{n}"] = Zn[rng.choice(len(Zn), min(n, len(Zn)), replace=False)]
for K in (500, 2000):
    t = time.time()
    ref[f"km{K}"] = MiniBatchKMeans(K, random_state=0, n_init=1, batch_size=4096).fit(Zn).cluster_centers_
    print("km", K, time.time() - t)
evalrows = np.where(tn | np.isin(y, sum(FOLDS.values(), [])))[0]
for rn, R in ref.items():
    t = time.time()
    d = np.zeros(len(y))
    d[evalrows] = NearestNeighbors(n_neighbors=1).fit(R).kneighbors(Z[evalrows])[0][:, 0]
    line = f"{rn:10s}"
    for fn, held in FOLDS.items():
        h = np.isin(y, held)
        line += f" {fn}={roc_auc_score(np.r_[np.zeros(tn.sum()), np.ones(h.sum())], np.r_[d[tn], d[h]]):.3f}"
    print(line, f"({time.time()-t:.0f}s)", flush=True)
