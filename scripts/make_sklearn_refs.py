#!/usr/bin/env python3
"""Test data and scikit-learn reference values for the regression, naive Bayes and k-means nodes.

Deterministic (fixed seeds). Writes, under tests/data/, uneven shards (one empty, one with
fewer rows than columns) and, under tests/expected/sklearn.json, what scikit-learn computes on
the concatenated rows:
  reg/part{0..3}.csv      x0..x4, y0, y1          LinearRegression, Ridge(alpha=0.5 / 10)
  nasty_reg/part*.csv     mean ~1e8 features, y   two-pass (centred) least squares
  nb/part{0..3}.csv       word counts, label text MultinomialNB(alpha=0.5); class 'eggs' only in part3
  gnb/part{0..3}.csv      features, label 1/2/10  GaussianNB
  km/part{0..3}.csv, km/init.csv                  KMeans(init=init.csv, n_init=1, algorithm='lloyd')
  blobs/part{0..3}.csv    5 separated blobs       KMeans(5, n_init=10, random_state=0..9): best inertia
  nb/bad_label.csv        a label the model has never seen (score must fail)
Run from the repository root:  python3 scripts/make_sklearn_refs.py   (needs scikit-learn)
"""
import json
import os

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.naive_bayes import GaussianNB, MultinomialNB

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [400, 0, 250, 3]


def path(*p):
    full = os.path.join(ROOT, *p)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def write_shards(name, header, rows, sizes=SIZES):
    """rows: list of lists of strings/numbers; split in order into the shard sizes."""
    at = 0
    for s, n in enumerate(sizes):
        with open(path(f"tests/data/{name}/part{s}.csv"), "w") as f:
            f.write(",".join(header) + "\n")
            for r in rows[at:at + n]:
                f.write(",".join(v if isinstance(v, str) else repr(float(v)) for v in r) + "\n")
        at += n
    assert at == len(rows)


def reg():
    rng = np.random.default_rng(11)
    n, d = sum(SIZES), 5
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + rng.uniform(-3, 3, d)
    beta = rng.standard_normal((d, 2))
    y = x @ beta + np.array([1.5, -4.0]) + 0.3 * rng.standard_normal((n, 2))
    write_shards("reg", [f"x{j}" for j in range(d)] + ["y0", "y1"], np.hstack([x, y]).tolist())
    lr = LinearRegression().fit(x, y)
    out = {"linreg": {"coef": lr.coef_.tolist(), "intercept": lr.intercept_.tolist(),
                      "r2": [float(1 - ((y[:, j] - lr.predict(x)[:, j]) ** 2).sum() / ((y[:, j] - y[:, j].mean()) ** 2).sum()) for j in range(2)],
                      "rmse": np.sqrt(((y - lr.predict(x)) ** 2).mean(axis=0)).tolist()}}
    for a in [0.5, 10.0]:
        r = Ridge(alpha=a).fit(x, y)
        out[f"ridge_{a}"] = {"coef": r.coef_.tolist(), "intercept": r.intercept_.tolist()}
    lr0 = LinearRegression(fit_intercept=False).fit(x, y)
    out["linreg_no_intercept"] = {"coef": lr0.coef_.tolist()}
    return out


def nasty_reg():
    rng = np.random.default_rng(12)
    n, d = sum(SIZES), 3
    z = rng.standard_normal((n, d))
    x = 1e8 + np.array([0.0, 10.0, 20.0]) + z * np.array([1e-2, 1.0, 10.0])
    y = (x - x.mean(axis=0)) @ np.array([3.0, -2.0, 0.5]) + 7.0 + 0.01 * rng.standard_normal(n)
    write_shards("nasty_reg", ["a", "b", "c", "y"], np.column_stack([x, y]).tolist())
    # parse back exactly what the files hold, then a centred two-pass solve
    parts = [np.loadtxt(path(f"tests/data/nasty_reg/part{s}.csv"), delimiter=",", skiprows=1, ndmin=2).reshape(-1, 4) for s in range(4)]
    a = np.vstack(parts)
    x, y = a[:, :3], a[:, 3]
    xm = x.mean(axis=0)
    xm = xm + (x - xm).mean(axis=0)
    ym = y.mean()
    coef, *_ = np.linalg.lstsq(x - xm, y - ym, rcond=None)
    return {"coef": coef.tolist(), "intercept": float(ym - xm @ coef)}


def nb():
    rng = np.random.default_rng(13)
    classes = ["spam", "ham", "eggs"]
    theta = rng.dirichlet(np.full(6, 0.7), size=3)
    n = sum(SIZES)
    lab = rng.choice(2, size=n)          # spam / ham everywhere ...
    lab[-3:] = 2                          # ... and 'eggs' only in the last shard
    counts = np.array([rng.multinomial(30, theta[c]) for c in lab])
    write_shards("nb", [f"w{j}" for j in range(6)] + ["label"], [list(map(float, c)) + [classes[l]] for c, l in zip(counts, lab)])
    y = np.array([classes[l] for l in lab])
    m = MultinomialNB(alpha=0.5).fit(counts, y)
    with open(path("tests/data/nb/bad_label.csv"), "w") as f:
        f.write("w0,w1,w2,w3,w4,w5,label\n1,2,3,4,5,6,spam\n1,1,1,1,1,1,toast\n")
    return {"classes": m.classes_.tolist(), "class_log_prior": m.class_log_prior_.tolist(),
            "feature_log_prob": m.feature_log_prob_.tolist(), "train_accuracy": float((m.predict(counts) == y).mean())}


def gnb():
    rng = np.random.default_rng(14)
    n = sum(SIZES)
    lab = rng.choice([1, 2, 10], size=n)
    means = {1: [0, 0, 0], 2: [2, -1, 0.5], 10: [-1, 3, 1]}
    x = np.array([means[l] for l in lab]) + rng.standard_normal((n, 3)) * np.array([1.0, 0.5, 2.0])
    write_shards("gnb", ["f0", "f1", "f2", "label"], [list(r) + [str(l)] for r, l in zip(x, lab)])
    x = np.array([[float(repr(float(v))) for v in r] for r in x])
    g = GaussianNB().fit(x, lab)
    return {"classes": [str(c) for c in g.classes_], "theta": g.theta_.tolist(), "var": g.var_.tolist(),
            "class_prior": g.class_prior_.tolist(), "train_accuracy": float((g.predict(x) == lab).mean())}


def km():
    rng = np.random.default_rng(15)
    n, d, k = sum(SIZES), 3, 4
    centers = rng.uniform(-5, 5, (k, d))
    x = centers[rng.choice(k, size=n)] + rng.standard_normal((n, d))
    write_shards("km", ["a", "b", "c"], x.tolist())
    init = x[[5, 100, 300, 600]] + 0.5
    with open(path("tests/data/km/init.csv"), "w") as f:
        f.write("a,b,c\n")
        for r in init:
            f.write(",".join(repr(float(v)) for v in r) + "\n")
    m = KMeans(n_clusters=k, init=init, n_init=1, algorithm="lloyd", tol=1e-4, max_iter=300).fit(x)
    return {"centroids": m.cluster_centers_.tolist(), "inertia": float(m.inertia_), "n_iter": int(m.n_iter_)}


def blobs():
    """Well-separated blobs: the bar for k-means' initialisation is scikit-learn's best of 10."""
    from sklearn.datasets import make_blobs
    x, _ = make_blobs(n_samples=3000, centers=5, n_features=4, random_state=3)
    write_shards("blobs", ["a", "b", "c", "d"], x.tolist(), sizes=[1500, 0, 1497, 3])
    runs = [KMeans(n_clusters=5, n_init=10, random_state=s, algorithm="lloyd").fit(x) for s in range(10)]
    single = [KMeans(n_clusters=5, n_init=1, random_state=s, algorithm="lloyd").fit(x) for s in range(10)]
    return {"best_inertia": min(float(m.inertia_) for m in runs),
            "n_init_10_inertia": [float(m.inertia_) for m in runs],
            "n_init_1_inertia": [float(m.inertia_) for m in single]}


if __name__ == "__main__":
    ref = {"sklearn_version": sklearn.__version__, "regression": reg(), "nasty_regression": nasty_reg(),
           "mnb": nb(), "gnb": gnb(), "kmeans": km(), "blobs": blobs()}
    with open(path("tests/expected/sklearn.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("wrote tests/data/{reg,nasty_reg,nb,gnb,km,blobs} and tests/expected/sklearn.json")
