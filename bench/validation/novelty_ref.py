"""Reference implementation (numpy) of internal/model/novelty's algorithm:
per-service k-means prototypes of normal rows in a log/one-hot standardized
space; score = d/(d+scale), d = distance to the nearest prototype of the same
service, scale = 99th percentile of d on held-out normal rows."""
import numpy as np
from sklearn.cluster import KMeans
import kdd

NSVC = len(kdd.SERVICES)


def dense(X):
    return kdd.novelty_features(X, service_weight=0.0)[:, :52]


class Novelty:
    def __init__(self, budget=512, cap=20000, seed=0, sd_floor=0.05):
        self.budget, self.cap, self.seed, self.sd_floor = budget, cap, seed, sd_floor

    def fit(self, Xn, Xcal):
        rng = np.random.default_rng(self.seed)
        F = dense(Xn)
        self.mu = F.mean(0)
        self.sd = np.maximum(F.std(0), self.sd_floor)
        Z = (F - self.mu) / self.sd
        svc = Xn[:, 2].astype(int)
        counts = np.bincount(svc, minlength=NSVC)
        w = np.sqrt(counts)
        alloc = np.where(counts > 0, np.maximum(1, np.round(self.budget * w / w.sum())), 0).astype(int)
        self.C = {}
        for s in np.nonzero(counts)[0]:
            Zs = Z[svc == s]
            if len(Zs) > self.cap:
                Zs = Zs[rng.choice(len(Zs), self.cap, replace=False)]
            k = min(alloc[s], len(np.unique(Zs, axis=0)))
            self.C[s] = KMeans(k, n_init=1, random_state=self.seed, max_iter=30).fit(Zs).cluster_centers_
        self.allC = np.concatenate(list(self.C.values()))
        self.scale = 1.0
        d = self.distance(Xcal)
        self.scale = np.quantile(d, 0.99)
        return self

    def distance(self, X):
        Z = (dense(X) - self.mu) / self.sd
        svc = X[:, 2].astype(int)
        d = np.empty(len(X))
        for s in np.unique(svc):
            q = np.where(svc == s)[0]
            C = self.C.get(s)
            pen = 0.0
            if C is None:
                C, pen = self.allC, self.scale
            for i in range(0, len(q), 10000):
                qq = q[i:i + 10000]
                d[qq] = np.sqrt(((Z[qq][:, None, :] - C[None]) ** 2).sum(2).min(1)) + pen
        return d

    def score(self, X):
        d = self.distance(X)
        return d / (d + self.scale)
