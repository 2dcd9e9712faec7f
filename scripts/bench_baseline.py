#!/usr/bin/env python3
"""Single-process numpy/pandas/scikit-learn baseline for scripts/bench.sh: the same job over all
shards. Usage: bench_baseline.py {moments|covariance|pca|linreg|kmeans} {csv|npy} SHARD_FILES...
(linreg: the last two columns are the targets; kmeans: all but the last two columns, k = 8,
10 Lloyd iterations from the first 8 rows.)"""
import sys

import numpy as np

node, fmt, files = sys.argv[1], sys.argv[2], sys.argv[3:]
if fmt == "csv":
    import pandas as pd
    x = np.vstack([pd.read_csv(f, engine="c", dtype=np.float64).to_numpy() for f in files])
else:
    x = np.vstack([np.load(f) for f in files])
if node == "linreg":
    a = np.column_stack([np.ones(len(x)), x[:, :-2]])
    coef, *_ = np.linalg.lstsq(a, x[:, -2:], rcond=None)
elif node == "kmeans":
    from sklearn.cluster import KMeans
    f = np.ascontiguousarray(x[:, :-2])
    KMeans(n_clusters=8, init=f[:8], n_init=1, max_iter=10, tol=0, algorithm="lloyd").fit(f)
elif node == "moments":
    out = (x.min(0), x.max(0), x.mean(0), x.var(0, ddof=1))
else:
    c = np.cov(x, rowvar=False)
    if node == "pca":
        out = np.linalg.eigh(c)
print(len(x), "rows")
