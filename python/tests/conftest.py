"""Shared set-up of the package's tests, which every rank runs (`mpirun -n N python -m pytest`):
the world's rank and size, a directory every rank sees (FLOWMPI_TEST_DIR, made by the test
command before mpirun; a fresh one on a single rank), and the rows each rank holds."""

import os
import shutil
import tempfile

import numpy as np
import pytest

import flowmpi


@pytest.fixture(scope="session")
def ctx():
    return flowmpi.Context()


@pytest.fixture(scope="session")
def shared(ctx):
    path = os.environ.get("FLOWMPI_TEST_DIR")
    if path:
        yield path
        return
    if ctx.size > 1:
        pytest.fail("several ranks need FLOWMPI_TEST_DIR: a directory they all see")
    path = tempfile.mkdtemp(prefix="flowmpi-pytest-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def global_rows(n=503, d=5, seed=7):
    """The whole data set, the same on every rank: correlated columns of different scales."""
    r = np.random.default_rng(seed)
    z = r.standard_normal((n, d))
    mix = np.triu(np.ones((d, d))) * np.linspace(1.0, 3.0, d)
    return z @ mix + np.arange(d) * 10.0


def split(n, size, rank):
    """Uneven pieces, and rank 1 empty when there are 3 or more ranks."""
    weights = np.array([3.0 if r % 2 == 0 else 1.0 for r in range(size)])
    if size >= 3:
        weights[1] = 0.0
    bounds = np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * n
    bounds = bounds.round().astype(int)
    return slice(bounds[rank], bounds[rank + 1])
