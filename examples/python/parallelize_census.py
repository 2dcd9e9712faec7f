"""The hand-written ``Parallelize(data, f)`` (and ``multiprocessing.Pool.map``) over all ranks:
every rank runs this script with the same items; each item runs once, somewhere; every rank
gets all results in input order. The sharedmem-style ``ordered`` section writes one line per
item to a file, in item order, whichever rank ran it.

    mpirun -n 4 .venv/bin/python examples/python/parallelize_census.py
"""

import os
import tempfile

import flowmpi

# A census: (region, households, people); the work per item is a small simulation.
census = [(f"region{i:02d}", 100 + 7 * i, 250 + 13 * i) for i in range(40)]


def per_household(item):
    name, households, people = item
    # Some real work: a fixed-point iteration towards people / households.
    x = 1.0
    for _ in range(2000):
        x = 0.5 * (x + people / households / x * x) if x else 1.0
    return name, round(people / households, 6)


with flowmpi.Context() as ctx:
    results = flowmpi.parallelize(per_household, census, schedule="dynamic")
    assert results == [per_household(c) for c in census]
    total = flowmpi.map_reduce(lambda c: c[2], lambda a, b: a + b, census)
    assert total == sum(c[2] for c in census)

    # One output file, in item order, written by whichever rank ran each item.
    path = os.path.join(tempfile.gettempdir(), f"flowmpi-census-{os.getuid()}.txt")
    if ctx.rank == 0:
        open(path, "w").close()
    ctx.barrier()

    def report(item):
        name, ratio = per_household(item)
        with ctx.ordered():
            with open(path, "a") as f:
                f.write(f"{name} {ratio}\n")
        return name

    flowmpi.parallelize(report, census, schedule="dynamic")
    lines = open(path).read().split("\n")[:-1]
    assert [l.split()[0] for l in lines] == [c[0] for c in census], lines[:5]
    ctx.barrier()
    if ctx.rank == 0:
        os.remove(path)
        print(f"{len(results)} regions over {ctx.size} ranks; {total} people; first {results[0]}")
