"""Data and the Python side of scripts/bench_formats.sh.

    python scripts/bench_formats.py make DIR --n 4000000 --d 32
        writes DIR/x.npy, DIR/x.parquet (pyarrow, row groups of 131072, uncompressed; pyarrow's
        default dictionary encoding, which for these random floats holds each column chunk whole:
        1 MiB of dictionary and 17-bit indices), DIR/x_plain.parquet (the same without the
        dictionary: plain float64 pages), DIR/x_snappy.parquet, DIR/x.h5 (h5py, contiguous /x)
        and DIR/x_gzip.h5 (chunks of 65536 rows, gzip level 1): the same float64 rows, columns
        x0..x{d-1}. Files already there are kept.
    python scripts/bench_formats.py read DIR WHAT
        reads one file the usual Python way and takes its covariance (numpy), printing seconds:
        WHAT = numpy | pyarrow | pandas | h5py
"""

import sys
import time

import numpy as np


def make(out, n, d):
    import os

    import h5py
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out, exist_ok=True)
    r = np.random.Generator(np.random.PCG64(5))
    x = r.standard_normal((n, d)) @ r.standard_normal((d, d)) + 10.0
    names = [f"x{j}" for j in range(d)]
    t = pa.table({nm: x[:, j] for j, nm in enumerate(names)})

    def h5(path, **how):
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=x, **how).attrs["columns"] = names

    files = {
        "x.npy": lambda p: np.save(p, x),
        "x.parquet": lambda p: pq.write_table(t, p, row_group_size=131072, compression="none"),
        "x_plain.parquet": lambda p: pq.write_table(t, p, row_group_size=131072, compression="none", use_dictionary=False),
        "x_snappy.parquet": lambda p: pq.write_table(t, p, row_group_size=131072, compression="snappy"),
        "x.h5": lambda p: h5(p),
        "x_gzip.h5": lambda p: h5(p, chunks=(65536, d), compression="gzip", compression_opts=1),
    }
    for name, write in files.items():
        if not os.path.exists(f"{out}/{name}"):
            write(f"{out}/{name}")


def read(out, what):
    t0 = time.perf_counter()
    if what == "numpy":
        x = np.load(f"{out}/x.npy")
    elif what == "pyarrow":
        import pyarrow.parquet as pq

        t = pq.read_table(f"{out}/x.parquet", use_threads=False)
        x = np.column_stack([c.to_numpy() for c in t.columns])
    elif what == "pandas":
        import pandas as pd

        x = pd.read_parquet(f"{out}/x.parquet").to_numpy()
    elif what == "h5py":
        import h5py

        with h5py.File(f"{out}/x.h5", "r") as f:
            x = f["x"][:]
    else:
        raise SystemExit(f"unknown reader {what}")
    np.cov(x, rowvar=False)
    print(f"{time.perf_counter() - t0:.3f}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 4_000_000
        d = int(sys.argv[sys.argv.index("--d") + 1]) if "--d" in sys.argv else 32
        make(sys.argv[2], n, d)
    else:
        read(sys.argv[2], sys.argv[3])
