"""The parallel idioms over all ranks: parallelize (Pool.map / Parallelize), map_reduce,
ordered and critical sections, argsort, FLOWMPI_SERIAL, and an exception in one item raising
on every rank. References are the serial Python computation."""

import os

import numpy as np
import pytest

import flowmpi
from conftest import split

MPI = pytest.importorskip("mpi4py.MPI", reason="mpi4py is installed by scripts/python_setup.sh")


@pytest.mark.parametrize("schedule", ["static", "dynamic", "guided"])
def test_parallelize_returns_every_result_in_input_order(ctx, schedule):
    items = list(range(101))
    out = flowmpi.parallelize(lambda x: (x * x, ctx.rank), items, schedule=schedule, chunk=3)
    assert [v for v, _ in out] == [x * x for x in items]
    ranks = {r for _, r in out}
    assert ranks <= set(range(ctx.size))
    if schedule == "static":
        assert ranks == set(range(ctx.size)), "static blocks give every rank items"
    assert MPI.COMM_WORLD.allgather(out) == [out] * ctx.size


def test_an_exception_in_one_item_raises_on_every_rank_with_its_traceback(ctx):
    def f(x):
        return 1 / (x - 7)

    with pytest.raises(flowmpi.ItemError) as e:
        flowmpi.parallelize(f, range(20))
    assert e.value.index == 7
    assert "item 7" in str(e.value) and "ZeroDivisionError" in str(e.value) and "return 1 / (x - 7)" in str(e.value)
    # The world is still usable.
    assert flowmpi.parallelize(str, range(3)) == ["0", "1", "2"]


def test_ordered_sections_run_in_item_order_and_critical_ones_one_at_a_time(ctx, shared):
    log = os.path.join(shared, f"ordered{ctx.size}.txt")
    counter = os.path.join(shared, f"counter{ctx.size}.txt")
    if ctx.rank == 0:
        open(log, "w").close()
        with open(counter, "w") as f:
            f.write("0")
    ctx.barrier()

    def item(i):
        with flowmpi.critical():
            # Read, wait, write: without the section, two ranks would lose an increment.
            n = int(open(counter).read())
            with open(counter, "w") as f:
                f.write(str(n + 1))
        with ctx.ordered():
            with open(log, "a") as f:
                f.write(f"{i}\n")
        return i

    assert flowmpi.parallelize(item, range(40), schedule="dynamic") == list(range(40))
    assert open(log).read().split() == [str(i) for i in range(40)]
    assert open(counter).read() == "40"
    with pytest.raises(flowmpi.Error, match="inside an item"):
        with flowmpi.ordered():
            pass


def test_map_reduce_folds_in_item_order(ctx):
    words = [f"w{i}" for i in range(37)]
    assert flowmpi.map_reduce(str.upper, lambda a, b: a + "," + b, words) == ",".join(w.upper() for w in words)
    assert flowmpi.map_reduce(str.upper, lambda a, b: a + b, []) is None


def test_serial_mode_runs_every_item_on_every_rank(ctx, monkeypatch):
    monkeypatch.setenv("FLOWMPI_SERIAL", "1")
    out = flowmpi.parallelize(lambda x: (x, ctx.rank), range(9))
    assert out == [(x, ctx.rank) for x in range(9)]


def test_argsort_is_numpys_stable_argsort_of_all_ranks_keys(ctx):
    r = np.random.default_rng(5)
    keys = r.integers(0, 9, 211).astype(np.float64)  # many equal keys: stability matters
    mine = keys[split(len(keys), ctx.size, ctx.rank)]
    idx = flowmpi.argsort(mine)
    assert idx.dtype == np.int64
    whole = np.concatenate(MPI.COMM_WORLD.allgather(idx))
    assert np.array_equal(whole, np.argsort(keys, kind="stable"))
