"""Leave-attack-types-out validation of forest vs forest + novelty.

usage: python3 validate.py nsl|kdd99 [trees]
"""
import sys, time
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
import kdd
from novelty_ref import Novelty

which = sys.argv[1]
trees = int(sys.argv[2]) if len(sys.argv) > 2 else 50
if which == "nsl":
    X, y = kdd.load("KDDTrain+.txt.gz")
else:
    X, y = kdd.load("kddcup.data_10_percent.gz")
cat = kdd.category(y)
types = sorted(set(y) - {"normal"})
FOLDS = {c: [a for a in types if kdd.CATS[a] == c] for c in ("r2l", "u2r", "probe", "dos")}
FOLDS.update({
    "mixA": ["satan", "back", "warezclient", "buffer_overflow"],
    "mixB": ["portsweep", "smurf", "guess_passwd", "rootkit"],
    "mixC": ["ipsweep", "teardrop", "warezmaster", "imap", "loadmodule"],
    "mixD": ["nmap", "pod", "land", "ftp_write", "multihop", "phf", "spy", "perl"],
})
COST = {"normal": [0, 1, 2, 2, 2], "probe": [1, 0, 2, 2, 2], "dos": [2, 1, 0, 2, 2], "u2r": [3, 2, 2, 0, 2], "r2l": [4, 2, 2, 2, 0]}
CI = {c: i for i, c in enumerate(["normal", "probe", "dos", "u2r", "r2l"])}
QS = (0.005, 0.01, 0.02, 0.03, 0.05)
PT = (0.5, 0.7, 0.9)
rng = np.random.default_rng(7)
agg = {}
print(f"data={which} rows={len(y)} trees={trees}")
for fname, held in FOLDS.items():
    t0 = time.time()
    isheld = np.isin(y, held)
    test = rng.random(len(y)) < 0.2
    nrm = y == "normal"
    tr = ~isheld & ~test
    cal = tr & nrm & (rng.random(len(y)) < 0.1)
    trn = tr & ~cal
    tn, tk = test & nrm, test & ~nrm & ~isheld
    rf = RandomForestClassifier(trees, n_jobs=2, random_state=0).fit(X[trn], y[trn])
    cls = list(rf.classes_)
    P = rf.predict_proba(X)
    pn = P[:, cls.index("normal")]
    ccat = np.array([kdd.CATS[c] for c in cls])
    catP = {c: P[:, ccat == c].sum(1) for c in ("normal", "probe", "dos", "u2r", "r2l")}
    catpred = np.array(["normal", "probe", "dos", "u2r", "r2l"])[np.argmax(np.stack([catP[c] for c in ("normal", "probe", "dos", "u2r", "r2l")], 1), 1)]
    attP = np.stack([catP[c] for c in ("probe", "dos", "u2r", "r2l")], 1)
    bestatt = np.array(["probe", "dos", "u2r", "r2l"])[np.argmax(attP, 1)]
    nov = Novelty(seed=0).fit(X[trn & nrm], X[cal])
    ev = tn | tk | isheld
    s = np.zeros(len(y)); s[ev] = nov.score(X[ev]); scal = nov.score(X[cal])
    auc = roc_auc_score(np.r_[np.zeros(tn.sum()), np.ones(isheld.sum())], np.r_[s[tn], s[isheld]])
    aucrf = roc_auc_score(np.r_[np.zeros(tn.sum()), np.ones(isheld.sum())], np.r_[1 - pn[tn], 1 - pn[isheld]])
    print(f"{fname:6s} held={isheld.sum():6d} {','.join(held)}\n       novelty AUC={auc:.3f} forest AUC={aucrf:.3f} ({time.time()-t0:.0f}s)")
    for pt in PT:
        for q in (None,) + QS:
            thr = 1.1 if q is None else np.quantile(scal, 1 - q)
            flag = (pn < pt) | (s > thr)
            fpr, dh, dk = flag[tn].mean(), flag[isheld].mean(), flag[tk].mean()
            key = (pt, q)
            r = agg.setdefault(key, [])
            r.append((fpr, dh, dk))
            extra = ""
            if which == "kdd99":
                # 5-category on test mix (test normal + test known + held): novelty flags -> best attack category
                m = tn | tk | isheld
                pc = np.where(flag & (catpred == "normal"), bestatt, np.where(flag, catpred, "normal"))
                # when the forest says attack (pn<pt) but its argmax is normal, use best attack category
                acc = (pc[m] == cat[m]).mean()
                cost = np.mean([COST[a][CI[b]] for a, b in zip(cat[m], pc[m])])
                unk = np.where(flag & (catpred == "normal"), "unknown", pc)
                acc_u = (unk[m] == cat[m]).mean()
                extra = f" cat_acc={acc:.4f} cost={cost:.4f} cat_acc(unknown)={acc_u:.4f}"
            print(f"       P(normal)<{pt} novelty q={q}: FPR={fpr:.4f} DR_held={dh:.4f} DR_known={dk:.4f}{extra}")
    sys.stdout.flush()
print("\nmean over folds (FPR, DR_held, DR_known, mix=0.43*(1-FPR)+0.57*(DR_held+DR_known)/2):")
for (pt, q), r in agg.items():
    a = np.mean(r, 0)
    print(f"  P(normal)<{pt} q={q}: FPR={a[0]:.4f} DR_held={a[1]:.4f} DR_known={a[2]:.4f} mix={0.43*(1-a[0])+0.57*(a[1]+a[2])/2:.4f}")
