"""Run by test_interrupt.py (as its own job): long work that only Ctrl-C ends. Every rank writes
its pid to DIR/pid.RANK, says "started" once the work is under way, and after the
KeyboardInterrupt checks that flowmpi works again.

    python interrupt_child.py map|kmeans DIR
"""

import os
import sys
import time

import numpy as np

import flowmpi

what, folder = sys.argv[1], sys.argv[2]
ctx = flowmpi.Context()
with open(os.path.join(folder, f"pid.{ctx.rank}"), "w") as f:
    f.write(str(os.getpid()))


def slow(i):
    if i == 0:
        print("started", flush=True)
    time.sleep(0.01)
    return i


try:
    if what == "map":
        flowmpi.parallelize(slow, range(100_000), schedule="dynamic")  # 1,000 s of items
    else:
        X = np.random.default_rng(ctx.rank).standard_normal((300_000, 8))
        if ctx.rank == 0:
            print("started", flush=True)
        flowmpi.fit("kmeans(k=64, init=random, max_iter=1000000, tol=0)", X)  # stops only when exactly converged
    print(f"rank {ctx.rank}: finished", flush=True)
except KeyboardInterrupt as e:
    print(f"rank {ctx.rank}: KeyboardInterrupt: {e}", flush=True)
assert flowmpi.parallelize(lambda x: x + 1, [1, 2, 3]) == [2, 3, 4]
print(f"rank {ctx.rank}: works again", flush=True)
