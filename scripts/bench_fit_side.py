"""One side of scripts/bench_daal4py.sh: train PCA on rows every rank makes in memory (the same
rows whatever the rank count), the best of --repeat runs; rank 0 prints `SIDE RANKS SECONDS
EIGENVALUES...` (the first three eigenvalues of the correlation matrix, so the two sides can be
seen to compute the same thing).

    mpirun -n 2 .venv/bin/python scripts/bench_fit_side.py flowmpi
    mpiexec -n 2 daal-venv/bin/python scripts/bench_fit_side.py daal4py   # Intel MPI's launcher
"""

import argparse
import time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("side", choices=["flowmpi", "daal4py"])
p.add_argument("--n", type=int, default=2_000_000)
p.add_argument("--d", type=int, default=32)
p.add_argument("--repeat", type=int, default=3)
p.add_argument("--threads", type=int, default=1, help="daal4py's threads per rank (flowmpi uses one)")
a = p.parse_args()

if a.side == "daal4py":
    import daal4py as d4p

    d4p.daalinit(a.threads)
    rank, size = d4p.my_procid(), d4p.num_procs()
else:
    import flowmpi

    ctx = flowmpi.Context()
    rank, size = ctx.rank, ctx.size

lo, hi = a.n * rank // size, a.n * (rank + 1) // size
# The global row i comes from the same generator whatever the split: rows are made in blocks.
block = 100_000
mix = np.triu(np.ones((a.d, a.d)))
parts = []
for b in range(lo // block, (hi + block - 1) // block):
    rows = np.random.default_rng(b).standard_normal((block, a.d)) @ mix
    s, e = max(lo, b * block), min(hi, (b + 1) * block)
    parts.append(rows[s - b * block : e - b * block])
mine = np.ascontiguousarray(np.vstack(parts)) if parts else np.zeros((0, a.d))

times = []
for _ in range(a.repeat):
    if a.side == "daal4py":
        t0 = time.perf_counter()
        res = d4p.pca(method="correlationDense", distributed=True, nComponents=5).compute(mine)
        times.append(time.perf_counter() - t0)
        ev = res.eigenvalues.ravel()[:3]
    else:
        ctx.barrier()
        t0 = time.perf_counter()
        model = flowmpi.fit("pca(n=5, method=corr)", mine)
        times.append(time.perf_counter() - t0)
if a.side == "flowmpi":
    ev = model.nodes[-1].eigenvalues[:3]
if rank == 0:
    print(a.side, size, f"{min(times):.4f}", " ".join(f"{v:.6g}" for v in ev), flush=True)
if a.side == "daal4py":
    d4p.daalfini()
