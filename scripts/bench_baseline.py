#!/usr/bin/env python3
"""Single-process numpy/pandas baseline for scripts/bench.sh: the same statistic over all shards.
Usage: bench_baseline.py {moments|covariance|pca} {csv|npy} SHARD_FILES..."""
import sys

import numpy as np

node, fmt, files = sys.argv[1], sys.argv[2], sys.argv[3:]
if fmt == "csv":
    import pandas as pd
    x = np.vstack([pd.read_csv(f, engine="c", dtype=np.float64).to_numpy() for f in files])
else:
    x = np.vstack([np.load(f) for f in files])
if node == "moments":
    out = (x.min(0), x.max(0), x.mean(0), x.var(0, ddof=1))
else:
    c = np.cov(x, rowvar=False)
    if node == "pca":
        out = np.linalg.eigh(c)
print(len(x), "rows")
