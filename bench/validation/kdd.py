"""Shared loading and feature transforms for the validation experiments.

Mirrors the Go encoding (internal/record): symbolic features become their
vocabulary index; the novelty transform is the one internal/model/novelty uses.
"""
import gzip
import os

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
PROTOCOLS = ["tcp", "udp", "icmp"]
SERVICES = ["IRC", "X11", "Z39_50", "aol", "auth", "bgp", "courier", "csnet_ns", "ctf",
            "daytime", "discard", "domain", "domain_u", "echo", "eco_i", "ecr_i", "efs",
            "exec", "finger", "ftp", "ftp_data", "gopher", "harvest", "hostnames", "http",
            "http_2784", "http_443", "http_8001", "imap4", "iso_tsap", "klogin", "kshell",
            "ldap", "link", "login", "mtp", "name", "netbios_dgm", "netbios_ns",
            "netbios_ssn", "netstat", "nnsp", "nntp", "ntp_u", "other", "pm_dump", "pop_2",
            "pop_3", "printer", "private", "red_i", "remote_job", "rje", "shell", "smtp",
            "sql_net", "ssh", "sunrpc", "supdup", "systat", "telnet", "tftp_u", "tim_i",
            "time", "urh_i", "urp_i", "uucp", "uucp_path", "vmnet", "whois"]
FLAGS = ["OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF", "SH"]
# Kinds in file order: s=symbolic b=binary c=count r=rate d=continuous
KINDS = "d s s s c c b c c c c b c c c c c c c c b b c c r r r r r r r c c r r r r r r r r".split()
assert len(KINDS) == 41

CATS = {}
with gzip.open(os.path.join(ROOT, "data", "kddcup99_attack_categories.txt.gz"), "rt") as f:
    for line in f:
        a, c = line.split()
        CATS[a] = c
CATS["normal"] = "normal"


def load(name):
    """Returns X (n,41) float64 with symbolic indexes, labels (n,) str."""
    path = os.path.join(ROOT, "data", name)
    cache = path + ".npz"
    if os.path.exists(cache):
        z = np.load(cache, allow_pickle=True)
        return z["X"], z["y"]
    pi = {v: i for i, v in enumerate(PROTOCOLS)}
    si = {v: i for i, v in enumerate(SERVICES)}
    fi = {v: i for i, v in enumerate(FLAGS)}
    rows, labels = [], []
    with gzip.open(path, "rt") as f:
        for line in f:
            p = line.rstrip("\n").split(",")
            r = [float(p[0]), pi[p[1]], si.get(p[2], si["other"]), fi.get(p[3], 0)]
            r += [float(v) for v in p[4:41]]
            rows.append(r)
            labels.append(p[41].rstrip("."))
    X, y = np.array(rows), np.array(labels)
    np.savez(cache, X=X, y=y)
    return X, y


def category(y):
    return np.array([CATS.get(a, "unknown") for a in y])


def novelty_features(X, service_weight=1.0):
    """log1p of counts/continuous, rates as they are, one-hot symbolic."""
    cols = []
    for j, k in enumerate(KINDS):
        if k == "s":
            continue
        v = X[:, j]
        if k in ("c", "d"):
            v = np.log1p(v)
        cols.append(v)
    num = np.stack(cols, 1)
    oh = [np.eye(3)[X[:, 1].astype(int)], np.eye(len(SERVICES))[X[:, 2].astype(int)] * service_weight,
          np.eye(len(FLAGS))[X[:, 3].astype(int)]]
    return np.concatenate([num] + oh, 1)
