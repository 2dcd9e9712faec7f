#!/usr/bin/env python3
"""Deterministic benchmark data: N rows x D columns (default 4,000,000 x 33) in S shards, as CSV
(header row, shortest round-trip text of values rounded to 6 decimals) and float64 .npy.

Correlated columns with non-zero means (x = mu + z @ A). Concatenated shards give the same rows
for any shard count. Not committed: scripts/bench.sh makes it under $BENCH_DIR.
Usage: bench_data.py OUT_DIR [--n N] [--d D] [--shards S]
"""
import argparse
import os

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--n", type=int, default=4_000_000)
ap.add_argument("--d", type=int, default=33)
ap.add_argument("--shards", type=int, default=4)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
p = np.random.Generator(np.random.PCG64(7))
mu = p.uniform(-3, 3, a.d)
A = p.standard_normal((a.d, a.d)) / np.sqrt(a.d)
names = [f"x{j}" for j in range(a.d)]
bounds = np.linspace(0, a.n, a.shards + 1).astype(int)
r = np.random.Generator(np.random.PCG64(8))
for s in range(a.shards):
    n = bounds[s + 1] - bounds[s]
    x = np.round(mu + r.standard_normal((n, a.d)) @ A, 6) + 0.0
    np.save(os.path.join(a.out, f"shard{s}.npy"), x)
    path = os.path.join(a.out, f"shard{s}.csv")
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        tbl = pa.table([pa.array(x[:, j]) for j in range(a.d)], names=names)
        pcsv.write_csv(tbl, path, pcsv.WriteOptions(include_header=True, quoting_style="none"))
    except ImportError:
        with open(path, "w") as f:
            f.write(",".join(names) + "\n")
            for row in x:
                f.write(",".join(repr(float(v)) for v in row) + "\n")
    print(f"{path}: {n} rows, {os.path.getsize(path) / 1e6:.0f} MB")
