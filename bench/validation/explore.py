"""Leave-attack-types-out comparison of novelty scores (exploration)."""
import sys, time
import numpy as np
from sklearn.ensemble import RandomForestClassifier, IsolationForest
from sklearn.cluster import MiniBatchKMeans, KMeans
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
import kdd

X, y = kdd.load("KDDTrain+.txt.gz")
cat = kdd.category(y)
F = kdd.novelty_features(X)
FOLDS = {
    "r2l": [a for a in set(y) if kdd.CATS[a] == "r2l"],
    "u2r": [a for a in set(y) if kdd.CATS[a] == "u2r"],
    "probe": [a for a in set(y) if kdd.CATS[a] == "probe"],
    "dos": [a for a in set(y) if kdd.CATS[a] == "dos"],
    "mixA": ["satan", "back", "warezclient", "buffer_overflow"],
    "mixB": ["portsweep", "smurf", "guess_passwd", "rootkit"],
    "mixC": ["ipsweep", "teardrop", "warezmaster", "imap", "loadmodule"],
    "mixD": ["nmap", "pod", "land", "ftp_write", "multihop", "phf", "spy", "perl"],
}

def kmeans_score(Ftr, K, seed):
    mu = Ftr.mean(0); sd = np.maximum(Ftr.std(0), 0.05)
    Z = (Ftr - mu) / sd
    km = KMeans(K, n_init=1, random_state=seed).fit(Z)
    d = np.sqrt(((Z - km.cluster_centers_[km.labels_]) ** 2).sum(1))
    r = np.array([np.quantile(d[km.labels_ == k], 0.95) if (km.labels_ == k).sum() > 0 else 1 for k in range(K)])
    r = np.maximum(r, 0.5)
    def score(Fx):
        Zx = (Fx - mu) / sd
        D = np.sqrt(((Zx[:, None, :] - km.cluster_centers_[None]) ** 2).sum(2))
        return (D / r[None]).min(1)
    return score

def knn_score(Ftr, k, seed):
    rng = np.random.default_rng(seed)
    sub = Ftr[rng.choice(len(Ftr), min(20000, len(Ftr)), replace=False)]
    mu = sub.mean(0); sd = np.maximum(sub.std(0), 0.05)
    nn = NearestNeighbors(n_neighbors=k).fit((sub - mu) / sd)
    return lambda Fx: nn.kneighbors((Fx - mu) / sd)[0][:, -1]

rng = np.random.default_rng(1)
for name, held in FOLDS.items():
    t0 = time.time()
    isheld = np.isin(y, held)
    test = rng.random(len(y)) < 0.2
    tr = ~isheld & ~test
    nrm = y == "normal"
    # calibration normal: 10% of training normal
    cal = tr & nrm & (rng.random(len(y)) < 0.1)
    trn = tr & ~cal
    tn = test & nrm
    tk = test & ~nrm & ~isheld
    rf = RandomForestClassifier(50, n_jobs=2, random_state=0, min_samples_leaf=1).fit(X[trn], (y[trn] != "normal"))
    p = rf.predict_proba(X)[:, 1]
    res = {"fpr": (p[tn] > 0.5).mean(), "dr_known": (p[tk] > 0.5).mean(), "dr_held": (p[isheld] > 0.5).mean(),
           "auc_rf_held": roc_auc_score(np.r_[np.zeros(tn.sum()), np.ones(isheld.sum())], np.r_[p[tn], p[isheld]])}
    out = [f"{name:6s} n_held={isheld.sum():6d} rf: fpr={res['fpr']:.4f} dr_known={res['dr_known']:.4f} dr_held={res['dr_held']:.4f} auc={res['auc_rf_held']:.3f}"]
    Fn = F[trn & nrm]
    models = {
        "iforest": (lambda: (lambda m: (lambda Fx: -m.score_samples(Fx)))(IsolationForest(n_estimators=100, random_state=0).fit(Fn))),
        "km32": (lambda: kmeans_score(Fn, 32, 0)),
        "km128": (lambda: kmeans_score(Fn, 128, 0)),
        "knn1": (lambda: knn_score(Fn, 1, 0)),
    }
    for mn, mk in models.items():
        sc = mk()
        s = sc(F)
        auc = roc_auc_score(np.r_[np.zeros(tn.sum()), np.ones(isheld.sum())], np.r_[s[tn], s[isheld]])
        line = f"   {mn:8s} auc_held={auc:.3f}"
        for q in (0.01, 0.02, 0.05):
            th = np.quantile(s[cal], 1 - q)
            flag = (p > 0.5) | (s > th)
            line += f" | q={q}: fpr={flag[tn].mean():.4f} held={flag[isheld].mean():.3f} known={flag[tk].mean():.3f}"
        out.append(line)
    print("\n".join(out), f"({time.time()-t0:.0f}s)", flush=True)
