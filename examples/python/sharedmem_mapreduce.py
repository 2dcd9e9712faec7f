"""sharedmem's MapReduce, over all ranks. The sharedmem original (one node, forked workers):

    with sharedmem.MapReduce() as pool:
        def work(i):
            h = numpy.histogram(chunk(i), bins=edges)[0]
            with pool.ordered:
                log.write(f"chunk {i}: {h.sum()} values\\n")
            return h
        def reduce(h):
            total[:] += h
        pool.map(work, range(n), reduce=reduce)
    order = sharedmem.argsort(values)

Here every rank runs this script; each chunk is made and counted by whichever rank gets it,
the ordered block writes the log in chunk order whatever rank ran it, the counts are summed
in chunk order (the same total on every rank), and the argsort spans every rank's values.

    mpirun -n 4 .venv/bin/python examples/python/sharedmem_mapreduce.py
"""

import os
import tempfile

import numpy as np

import flowmpi

CHUNKS, PER_CHUNK = 24, 10_000
edges = np.linspace(-4.0, 4.0, 33)


def chunk(i):
    """The i-th piece of the data (made where it is used, as a file would be read)."""
    return np.random.default_rng(i).standard_normal(PER_CHUNK)


with flowmpi.Context() as ctx:
    log = os.path.join(tempfile.gettempdir(), f"flowmpi-sharedmem-{os.getuid()}.log")
    if ctx.rank == 0:
        open(log, "w").close()
    ctx.barrier()

    def work(i):
        h = np.histogram(chunk(i), bins=edges)[0]
        with ctx.ordered():  # sharedmem's `with pool.ordered:`
            with open(log, "a") as f:
                f.write(f"chunk {i}: {h.sum()} values in range\n")
        return h

    total = flowmpi.map_reduce(work, lambda a, b: a + b, range(CHUNKS), schedule="dynamic")

    # The same counts as one process on all the data; the log in chunk order.
    everything = np.concatenate([chunk(i) for i in range(CHUNKS)])
    assert np.array_equal(total, np.histogram(everything, bins=edges)[0])
    lines = open(log).read().splitlines()
    assert [int(l.split()[1].rstrip(":")) for l in lines] == list(range(CHUNKS)), lines[:3]

    # sharedmem.argsort: each rank holds some chunks' values; the global stable order.
    mine = np.concatenate([chunk(i) for i in range(ctx.rank, CHUNKS, ctx.size)])
    order = flowmpi.argsort(mine)  # this rank's slice of the global order, as global indices
    held = np.concatenate([np.concatenate([chunk(i) for i in range(r, CHUNKS, ctx.size)]) for r in range(ctx.size)])
    lo = sum(len(range(r, CHUNKS, ctx.size)) * PER_CHUNK for r in range(ctx.rank))
    assert np.array_equal(order, np.argsort(held, kind="stable")[lo : lo + len(mine)])
    ctx.barrier()
    if ctx.rank == 0:
        os.remove(log)
        print(f"{CHUNKS} chunks over {ctx.size} rank{'s' if ctx.size > 1 else ''}: {total.sum()} values in range, busiest bin {total.max()}")
