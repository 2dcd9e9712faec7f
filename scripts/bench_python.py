"""flowmpi's Python package against the Python tools our users come from, in one run (ratios are
what count; these machines are noisy). Every rank runs this script:

    mpirun -n 2 .venv/bin/python scripts/bench_python.py [--n 2000000] [--d 32] [--items 20000]

1. fit: flowmpi.fit("pca(n=5)") over all ranks' rows (each rank its share) against
   scikit-learn's PCA and numpy's covariance + eigh of all the rows on one rank.
2. parallelize: per-item overhead of flowmpi.parallelize over all ranks against
   mpi4py.futures (MPICommExecutor on the same ranks: rank 0 hands out, the others work),
   multiprocessing.Pool(ranks).map and a plain loop, on trivial items.
daal4py's SPMD mode needs Intel MPI's launcher: scripts/bench_daal4py.sh compares it.
Times are the best of --repeat runs; rank 0 prints the table.
"""

import argparse
import multiprocessing
import time

import numpy as np

try:  # mpi4py first, when there: it initialises MPI at the thread level mpi4py.futures wants,
    from mpi4py import MPI  # and flowmpi borrows it
    from mpi4py.futures import MPICommExecutor
except ImportError:
    MPI = None

import flowmpi


def best(f, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def square(x):
    return x * x


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2_000_000)
    p.add_argument("--d", type=int, default=32)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    ctx = flowmpi.Context()
    rows = []
    r = np.random.default_rng(1)
    lo, hi = a.n * ctx.rank // ctx.size, a.n * (ctx.rank + 1) // ctx.size
    mine = r.standard_normal((hi - lo, a.d)) @ np.triu(np.ones((a.d, a.d)))
    t_flowmpi = best(lambda: (ctx.barrier(), flowmpi.fit("pca(n=5)", mine)), a.repeat)
    rows.append(("fit pca(n=5)", f"{a.n} x {a.d}", "flowmpi.fit", t_flowmpi))
    if ctx.rank == 0:
        from sklearn.decomposition import PCA

        X = np.vstack([mine] * ctx.size)[: a.n]  # the same amount of data on one rank
        rows.append(("fit pca(n=5)", f"{len(X)} x {a.d}", "sklearn PCA (1 process)", best(lambda: PCA(5, svd_solver="full").fit(X), a.repeat)))
        rows.append(("fit pca(n=5)", f"{len(X)} x {a.d}", "numpy cov + eigh (1 process)", best(lambda: np.linalg.eigh(np.cov(X, rowvar=False)), a.repeat)))
    items = list(range(a.items))
    t_par = best(lambda: flowmpi.parallelize(square, items, schedule="guided"), a.repeat)
    rows.append(("parallelize", f"{a.items} items", f"flowmpi over {ctx.size} ranks", t_par))
    if MPI is not None:
        def futures_map(chunksize):
            with MPICommExecutor(MPI.COMM_WORLD, root=0) as ex:
                if ex is not None:  # rank 0; the other ranks serve items until the block ends
                    return list(ex.map(square, items, chunksize=chunksize))

        chunks = max(1, a.items // (8 * ctx.size))
        for chunksize in (1, chunks):
            t_fut = best(lambda: futures_map(chunksize), a.repeat)
            rows.append(("parallelize", f"{a.items} items", f"mpi4py.futures (chunksize={chunksize})", t_fut))
    if ctx.rank == 0:
        with multiprocessing.Pool(ctx.size) as pool:
            rows.append(("parallelize", f"{a.items} items", f"Pool({ctx.size}).map", best(lambda: pool.map(square, items), a.repeat)))
            rows.append(("parallelize", f"{a.items} items", f"Pool({ctx.size}).map(chunksize=1)", best(lambda: pool.map(square, items, chunksize=1), a.repeat)))
        rows.append(("parallelize", f"{a.items} items", "plain loop", best(lambda: [square(x) for x in items], a.repeat)))
        base = {}
        print(f"{'job':<14} {'size':<18} {'tool':<30} {'best s':>8} {'ratio':>7}")
        for job, size, tool, t in rows:
            base.setdefault(job, t)
            print(f"{job:<14} {size:<18} {tool:<30} {t:8.3f} {t / base[job]:7.2f}")
        print("ratio: time / flowmpi's time for the same job")


if __name__ == "__main__":
    main()
