"""Exploration behind the novelty model's design (docs/validation.md, "1. Which
novelty score?"). One script, four studies, each reproducing a table of
docs/validation.md on KDDTrain+ (read through kdd.py):

  python3 bench/validation/explore.py scores      # novelty scores per held-out fold (isolation forest, k-means, 1-NN)
  python3 bench/validation/explore.py reference   # how small the 1-NN reference set can be
  python3 bench/validation/explore.py prototypes  # per-service k-means prototypes vs budget
  python3 bench/validation/explore.py weights     # weighting the content features

Requirements (pinned): pip install -r bench/validation/requirements.txt.
Each study seeds its own random generator as the original runs did, so the
figures in docs/validation.md come out again (up to library versions).
"""
import sys
import time

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

import kdd

MIXES = {
    "mixA": ["satan", "back", "warezclient", "buffer_overflow"],
    "mixB": ["portsweep", "smurf", "guess_passwd", "rootkit"],
    "mixC": ["ipsweep", "teardrop", "warezmaster", "imap", "loadmodule"],
    "mixD": ["nmap", "pod", "land", "ftp_write", "multihop", "phf", "spy", "perl"],
}


def folds_for(y, cats=("r2l", "u2r", "probe", "dos"), mixes=("mixA", "mixB")):
    """The held-out attack types of each fold: whole categories, then mixes."""
    folds = {c: [a for a in set(y) if kdd.CATS[a] == c] for c in cats}
    for m in mixes:
        folds[m] = MIXES[m]
    return folds


def load_features(**kw):
    X, y = kdd.load("KDDTrain+.txt.gz")
    return X, y, kdd.novelty_features(X, **kw)


def auc(d, tn, held):
    """AUC of score d for telling the held-out rows from the unseen normal ones."""
    return roc_auc_score(np.r_[np.zeros(tn.sum()), np.ones(held.sum())], np.r_[d[tn], d[held]])


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

def scores():
    """Leave-attack-types-out comparison of novelty scores, one forest per fold."""
    X, y, F = load_features()
    folds = folds_for(y, mixes=("mixA", "mixB", "mixC", "mixD"))
    rng = np.random.default_rng(1)
    for name, held in folds.items():
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


def reference():
    """How small can the kNN reference set be?"""
    X, y, F = load_features()
    folds = folds_for(y, cats=("r2l", "u2r", "probe"))
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
    evalrows = np.where(tn | np.isin(y, sum(folds.values(), [])))[0]
    for rn, R in ref.items():
        t = time.time()
        d = np.zeros(len(y))
        d[evalrows] = NearestNeighbors(n_neighbors=1).fit(R).kneighbors(Z[evalrows])[0][:, 0]
        line = f"{rn:10s}"
        for fn, held in folds.items():
            line += f" {fn}={auc(d, tn, np.isin(y, held)):.3f}"
        print(line, f"({time.time()-t:.0f}s)", flush=True)


def service_prototype_distance(Z, trn, svc, budget, rng):
    """Distance of every row to the nearest of its service's k-means
    prototypes, trained on the rows trn, budget prototypes shared out by the
    square root of each service's count; 1e3 for a service without any."""
    counts = np.bincount(svc[trn], minlength=70)
    w = np.sqrt(counts)
    alloc = np.where(counts > 0, np.maximum(1, np.round(budget * w / w.sum())), 0).astype(int)
    d = np.full(len(Z), 1e3)
    total = 0
    for s in range(70):
        if alloc[s] == 0:
            continue
        Zs = Z[trn & (svc == s)]
        k = min(alloc[s], len(Zs)); total += k
        if len(Zs) > 20000:
            Zs = Zs[rng.choice(len(Zs), 20000, replace=False)]
        C = KMeans(k, n_init=1, random_state=0, max_iter=30).fit(Zs).cluster_centers_
        q = np.where(svc == s)[0]
        for i in range(0, len(q), 20000):
            qq = q[i:i+20000]
            d[qq] = np.sqrt(((Z[qq][:, None, :] - C[None]) ** 2).sum(2).min(1))
    return d, total


def prototype_setup():
    """Numeric, protocol and flag features (the service is the bucket), the
    80/20 split of the normal rows, and the standardisation of the 80%."""
    X, y, F = load_features(service_weight=0.0)
    F = F[:, :52]
    svc = X[:, 2].astype(int)
    rng = np.random.default_rng(1)
    nrm = y == "normal"
    test = rng.random(len(y)) < 0.2
    trn = nrm & ~test
    mu = F[trn].mean(0); sd = np.maximum(F[trn].std(0), 0.05)
    return y, F, svc, rng, trn, nrm & test, mu, sd


def prototypes():
    """Per-service k-means prototypes: AUC vs prototype budget."""
    y, F, svc, rng, trn, tn, mu, sd = prototype_setup()
    folds = folds_for(y)
    Z = (F - mu) / sd
    for budget in (128, 256, 512, 1024):
        t = time.time()
        d, total = service_prototype_distance(Z, trn, svc, budget, rng)
        line = f"budget={budget} protos={total}"
        for fn, held in folds.items():
            line += f" {fn}={auc(d, tn, np.isin(y, held)):.3f}"
        print(line, f"({time.time()-t:.0f}s)", flush=True)


def weights():
    """Does weighting the content features (hot .. is_guest_login) help?"""
    y, F, svc, rng, trn, tn, mu, sd = prototype_setup()
    folds = folds_for(y)
    # dense numeric order = features 0,4..40 (symbolic 1-3 dropped): content features 9..21 -> dense 6..18
    content = np.zeros(52, bool); content[6:19] = True
    for w in (0.5, 1.0, 2.0):
        Z = (F - mu) / sd * np.where(content, w, 1.0)
        d, _ = service_prototype_distance(Z, trn, svc, 512, rng)
        line = f"content weight {w}:"
        thr = np.quantile(d[tn], 0.98)
        for fn, held in folds.items():
            h = np.isin(y, held)
            line += f" {fn}={auc(d, tn, h):.3f}/{(d[h] > thr).mean():.2f}"
        print(line, flush=True)


STUDIES = {"scores": scores, "reference": reference, "prototypes": prototypes, "weights": weights}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in STUDIES:
        sys.exit(__doc__)
    STUDIES[sys.argv[1]]()
