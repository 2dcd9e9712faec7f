"""Communicators from mpi4py: two halves of the world (COMM_WORLD.Split) train two different
models side by side, each checked against numpy on its own half's rows; the world still works
afterwards. flowmpi and mpi4py share one MPI (mpi4py initialises it; flowmpi borrows)."""

import numpy as np
import pytest

mpi4py = pytest.importorskip("mpi4py", reason="mpi4py is installed by scripts/python_setup.sh")
from mpi4py import MPI  # noqa: E402

import flowmpi  # noqa: E402
from conftest import global_rows, split  # noqa: E402


def test_two_halves_of_a_split_world_train_two_models():
    world = MPI.COMM_WORLD
    color = world.rank % 2
    half = world.Split(color, world.rank)
    X = global_rows(n=301, seed=11 + color)
    mine = X[split(len(X), half.size, half.rank)]
    if color == 0:
        model = flowmpi.fit("covariance", mine, comm=half)
        ref = np.cov(X, rowvar=False)
        got = model.nodes[0].covariance
        assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
    else:
        model = flowmpi.fit("moments", mine, comm=half)
        np.testing.assert_allclose(model.nodes[0].moments.mean, X.mean(axis=0), rtol=0, atol=1e-12 * np.abs(X).max())
    assert model.training_rows == len(X)
    # The same model on every rank of the half, and the program's own messages still flow.
    texts = half.allgather(model.to_json())
    assert all(t == texts[0] for t in texts)
    assert world.allreduce(1) == world.size
    half.Free()
    # The world, by mpi4py's communicator and by default, after the halves.
    a = flowmpi.fit("moments", global_rows(n=50)[split(50, world.size, world.rank)], comm=world)
    b = flowmpi.fit("moments", global_rows(n=50)[split(50, world.size, world.rank)])
    assert a.to_json() == b.to_json()


def test_mpi4py_on_another_mpi_library_is_refused_naming_both(ctx, monkeypatch):
    import sys
    import types

    # The real mpi4py (built against this MPI by the test set-up) passes.
    import mpi4py.MPI

    flowmpi._check_mpi4py()
    ours = flowmpi._flowmpi.library_version().splitlines()[0]
    other = "MPICH Version:      4.1.2" if "open mpi" in ours.lower() else "Open MPI v4.1.6, package: Debian"
    fake = types.SimpleNamespace(Get_library_version=lambda: other + "\nMPICH Release date: ...")
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", fake)
    with pytest.raises(flowmpi.Error) as e:
        flowmpi._check_mpi4py()
    assert other in str(e.value) and ours in str(e.value), str(e.value)
    assert "--no-binary mpi4py" in str(e.value)
