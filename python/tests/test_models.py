"""flowmpi's Python package against independent references, on every rank count the test
command runs (1..4): numpy's eigendecomposition and least squares on the concatenated rows,
and the `flowmpi` command line on the same files (bit for bit)."""

import json
import os
import subprocess

import numpy as np
import pytest

import flowmpi
from conftest import global_rows, split

# The command runs as a singleton beside the test's ranks: without the launcher's variables,
# it would try to join this job.
SINGLETON = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM", "OMPI_MCA_ess", "OMPI_MCA_orte", "PMIX_", "PMI_", "OMPI_FILE", "OMPI_APP", "OMPI_UNIVERSE", "OMPI_FIRST", "OMPI_NUM"))}
FLOWMPI = os.environ.get("FLOWMPI_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "flowmpi"))


def test_fit_pca_matches_numpy_on_uneven_ranks(ctx):
    X = global_rows()
    mine = X[split(len(X), ctx.size, ctx.rank)]
    model = flowmpi.fit("pca(n=2)", mine, columns=list("abcde"))
    assert model.training_rows == len(X)
    assert model.input_columns == list("abcde") and model.output_columns == ["pc0", "pc1"]
    pca = model.nodes[0]
    assert pca.kind == "pca" and pca.components.shape == (2, 5)
    w, v = np.linalg.eigh(np.cov(X, rowvar=False))
    w, v = w[::-1], v[:, ::-1]
    # Bounds from the conditioning: eigenvalues to round-off of the largest, eigenvectors by
    # the gap to the next eigenvalue.
    assert np.abs(pca.eigenvalues - w).max() <= 1e-12 * w[0]
    gap = min(w[0] - w[1], w[1] - w[2])
    for k in range(2):
        assert abs(abs(pca.components[k] @ v[:, k]) - 1.0) <= 1e-12 * w[0] / gap
    np.testing.assert_allclose(pca.explained_variance_ratio, w[:2] / w.sum(), rtol=0, atol=1e-12)
    # transform: the centred projection, as numpy computes it.
    Y = model.transform(mine)
    ref = (mine - X.mean(axis=0)) @ pca.components.T
    assert Y.shape == (len(mine), 2)
    assert np.abs(Y - ref).max(initial=0.0) <= 1e-9 * np.abs(X).max()


def test_fit_linreg_takes_its_targets_from_the_columns(ctx):
    X = global_rows(seed=3)[:, :3]
    beta = np.array([[1.5, -2.0], [0.25, 4.0], [-1.0, 0.5]])
    Y = X @ beta + np.array([3.0, -7.0]) + 0.01 * np.sin(np.arange(len(X)))[:, None]
    table = np.hstack([X, Y])
    s = split(len(X), ctx.size, ctx.rank)
    model = flowmpi.fit("linreg(target=[y0,y1])", table[s], columns=["a", "b", "c", "y0", "y1"])
    assert model.input_columns == ["a", "b", "c"]
    node = model.nodes[-1]
    A = np.hstack([X, np.ones((len(X), 1))])
    ref, *_ = np.linalg.lstsq(A, Y, rcond=None)
    cond = np.linalg.cond(A)
    coef = np.asarray(node.coefficients)
    assert coef.shape == (2, 3)
    assert np.abs(coef - ref[:3].T).max() <= 1e-13 * cond * np.abs(ref).max()
    np.testing.assert_allclose(node.intercept, ref[3], rtol=0, atol=1e-13 * cond * np.abs(ref).max())
    pred = model.predict(X[s])
    assert pred.shape[0] == s.stop - s.start


def test_float32_and_fortran_order_rows_give_the_same_model(ctx):
    X = global_rows(n=101)
    mine = X[split(len(X), ctx.size, ctx.rank)]
    a = flowmpi.fit("covariance", mine.astype(np.float32))
    b = flowmpi.fit("covariance", np.asfortranarray(mine.astype(np.float32).astype(np.float64)))
    assert a.to_json() == b.to_json()
    assert flowmpi.fit("covariance", np.asfortranarray(mine)).nodes[0].covariance.shape == (5, 5)


def test_threads_change_no_bit_of_a_model(ctx):
    # 60,000 rows of 5 columns are several parts for the rank's threads (13,107 rows each).
    X = global_rows(n=60_000, seed=5)
    mine = X[split(len(X), ctx.size, ctx.rank)]
    for flow in ("covariance | pca(n=2)", "sfa2(n=2)", "kmeans(k=3, init=random, seed=1, tol=0)"):
        one = flowmpi.fit(flow, mine, threads=1).to_json()
        for t in (2, 3):
            assert flowmpi.fit(flow, mine, threads=t).to_json() == one, (flow, t)
    ref = np.cov(X, rowvar=False)
    got = flowmpi.fit("covariance", mine, threads=3).nodes[0].covariance
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            flowmpi.fit("covariance", mine, threads=bad)


def test_train_on_files_equals_the_command_line_bit_for_bit(ctx, shared):
    X = global_rows(n=1203)
    d = os.path.join(shared, f"files{ctx.size}")
    if ctx.rank == 0:
        os.makedirs(d, exist_ok=True)
    ctx.barrier()
    mine = X[split(len(X), ctx.size, ctx.rank)]
    with open(os.path.join(d, f"part{ctx.rank}.csv"), "w") as f:
        f.write("a,b,c,d,e\n")
        for row in mine:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    ctx.barrier()
    spec = os.path.join(d, "part*.csv")
    saved = os.path.join(d, "py.json")
    model = flowmpi.train("moments | pca(n=3)", data=spec, reproducible=True, save=saved)
    assert model.training_rows == len(X)
    ctx.barrier()
    if ctx.rank == 0:
        # The command line, one rank: --reproducible promises the same bits on any rank count.
        cli = os.path.join(d, "cli.json")
        subprocess.run([FLOWMPI, "train", "--data", spec, "--flow", "moments | pca(n=3)", "--reproducible", "--model", cli], check=True,
                       capture_output=True, env=SINGLETON)
        ours, theirs = json.load(open(saved)), json.load(open(cli))
        assert ours["nodes"] == theirs["nodes"]
        assert json.loads(model.to_json())["nodes"] == theirs["nodes"]
        # execute: the package's transform equals the command's output, bit for bit.
        out = os.path.join(d, "out.csv")
        subprocess.run([FLOWMPI, "execute", "--model", cli, "--data", spec, "--out", out], check=True, capture_output=True, env=SINGLETON)
        ref = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
        got = flowmpi.load(cli).transform(X)
        assert got.shape == ref.shape
        assert np.array_equal(got, ref)
    ctx.barrier()


def test_errors_are_raised_on_every_rank_with_the_command_lines_sentence(ctx):
    X = global_rows(n=20)
    with pytest.raises(flowmpi.ParamError, match="pca: n must be"):
        flowmpi.fit("pca(n=0)", X)
    with pytest.raises(flowmpi.Error, match="target column 'y' is not among the columns"):
        flowmpi.fit("linreg(target=y)", X, columns=list("abcde"))
    model = flowmpi.fit("pca(n=2)", X[split(20, ctx.size, ctx.rank)])
    with pytest.raises(flowmpi.ModelError, match="rows of 3 columns, but it was trained on 5"):
        model.transform(X[:, :3])
    with pytest.raises(AttributeError, match="no field 'centroids'"):
        model.nodes[0].centroids


def test_gnb_probabilities_match_numpy_and_the_command_line(ctx, shared):
    r = np.random.default_rng(2)
    n = 240
    c = np.arange(n) % 3
    X = r.standard_normal((n, 2)) * (1.0 + c[:, None]) + c[:, None] * np.array([2.0, -1.0])
    d = os.path.join(shared, f"gnb{ctx.size}")
    if ctx.rank == 0:
        os.makedirs(d, exist_ok=True)
    ctx.barrier()
    mine = split(n, ctx.size, ctx.rank)
    with open(os.path.join(d, f"part{ctx.rank}.csv"), "w") as f:
        f.write("a,b,c\n")
        for row, label in zip(X[mine], c[mine]):
            f.write(f"{float(row[0])!r},{float(row[1])!r},{label}\n")
    ctx.barrier()
    spec = os.path.join(d, "part*.csv")
    model = flowmpi.train("gnb(label=c)", data=spec, reproducible=True)
    assert model.classes == ["0", "1", "2"]
    P = model.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # scikit-learn's GaussianNB, written out: per-class means and variances (+ 1e-9 of the
    # largest feature variance), priors from the counts.
    eps = 1e-9 * X.var(axis=0).max()
    logp = np.column_stack([
        np.log((c == k).mean()) - 0.5 * np.sum(np.log(2 * np.pi * (X[c == k].var(axis=0) + eps)) + (X - X[c == k].mean(axis=0)) ** 2 / (X[c == k].var(axis=0) + eps), axis=1)
        for k in range(3)
    ])
    logp -= np.logaddexp.reduce(logp, axis=1)[:, None]
    assert np.abs(model.predict_log_proba(X) - logp).max() <= 1e-9
    if ctx.rank == 0:
        cli = os.path.join(d, "m.json")
        model.save(cli, comm=MPI_SELF())
        out = os.path.join(d, "out.csv")
        subprocess.run([FLOWMPI, "execute", "--model", cli, "--data", spec, "--proba", "--out", out], check=True, capture_output=True, env=SINGLETON)
        with open(out) as f:
            head = f.readline().strip().split(",")
        ref = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
        assert head[-3:] == ["logp_0", "logp_1", "logp_2"]
        rows = np.concatenate([X[split(n, ctx.size, r)] for r in range(ctx.size)])
        assert np.array_equal(model.predict_log_proba(rows), ref[:, -3:])
    ctx.barrier()


def MPI_SELF():
    from mpi4py import MPI

    return MPI.COMM_SELF


def test_bad_input_names_rank_file_and_line_on_every_rank(ctx, shared):
    d = os.path.join(shared, f"bad{ctx.size}")
    if ctx.rank == 0:
        os.makedirs(d, exist_ok=True)
    ctx.barrier()
    with open(os.path.join(d, f"part{ctx.rank}.csv"), "w") as f:
        f.write("a,b\n1,2\n" + ("3,abc\n" if ctx.rank == 0 else "3,4\n"))
    ctx.barrier()
    with pytest.raises(flowmpi.DataError) as e:
        flowmpi.train("covariance", data=os.path.join(d, "part*.csv"))
    assert (e.value.rank, e.value.line) == (0, 3), str(e.value)
    assert e.value.file.endswith("part0.csv")
    assert "cannot parse 'abc' as a number" in str(e.value)
    ctx.barrier()


def test_train_reads_parquet_hdf5_and_compressed_csv_as_the_cli_does(ctx):
    # pyarrow's Parquet (string labels) and gzip/zstd CSV shards (checked in, made by
    # scripts/make_parquet_data.py and make_compressed_data.sh): the models of the same rows.
    data = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")
    csv = flowmpi.train("gnb(label=label)", data=os.path.join(data, "gnb", "part*.csv"))
    parquet = flowmpi.train("gnb(label=label)", data=os.path.join(data, "parquet_gnb", "part*.parquet"))
    assert parquet.classes == csv.classes == ["1", "2", "10"]
    for key in ("theta", "var", "class_prior"):
        a, b = getattr(parquet.nodes[0], key), getattr(csv.nodes[0], key)
        assert np.allclose(a, b, rtol=0, atol=1e-13 * np.abs(b).max()), key
    plain = flowmpi.train("covariance", data=os.path.join(data, "nasty", "part*.csv"), reproducible=True)
    packed = flowmpi.train("covariance", data=os.path.join(data, "compressed", "part*"), reproducible=True)
    cov = plain.nodes[0].covariance
    assert np.allclose(packed.nodes[0].covariance, cov, rtol=0, atol=1e-12 * np.abs(cov).max())
    # h5py's HDF5 (scripts/make_hdf5_data.py): the same rows, the dataset named after the colon,
    # the column names from its attribute.
    h5 = flowmpi.train("covariance", data=os.path.join(data, "hdf5", "part*.h5") + ":/run/x", reproducible=True)
    assert h5.input_columns == plain.input_columns
    assert np.allclose(h5.nodes[0].covariance, cov, rtol=0, atol=1e-12 * np.abs(cov).max())
    labelled = flowmpi.train("gnb(label=label)", data=os.path.join(data, "hdf5_gnb", "part*.h5"))
    assert np.allclose(labelled.nodes[0].theta, csv.nodes[0].theta, rtol=0, atol=1e-13 * np.abs(csv.nodes[0].theta).max())


def test_plot_draws_the_commands_figure_and_shows_in_a_notebook(ctx, shared):
    import pathlib
    import struct
    import xml.etree.ElementTree as ET

    data = os.path.join(os.path.dirname(__file__), "..", "..", "data", "example", "part*.csv")
    model = flowmpi.train("covariance | pca(n=3)", data=data)
    fig = model.plot(size=(900, 600))
    root = ET.fromstring(fig.svg)
    assert root.tag.endswith("svg") and root.get("width") == "900"
    texts = [t.text.strip() for t in root.iter() if t.tag.endswith("text") and t.text]
    assert "PCA — node 1: pca(n=3)" in texts and "PC8" in texts, texts
    assert fig._repr_svg_() == fig.svg
    png = fig.png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (900, 600)
    # The command draws the same picture from the saved model (rank 0 only: a file each).
    tmp_path = pathlib.Path(shared)
    if ctx.rank == 0:
        saved, out = tmp_path / "plot-m.json", tmp_path / "plot-corr.svg"
        saved.write_text(model.to_json())
        subprocess.run([FLOWMPI, "plot", str(saved), "--node", "0", "-o", str(out), "--size", "900x600"], env=SINGLETON, check=True, capture_output=True)
        assert out.read_text() == model.plot(node=0, size=(900, 600)).svg
        model.plot(tmp_path / "plot-pca.png")
        assert (tmp_path / "plot-pca.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(flowmpi.ParamError, match="the model has 2 node"):
        model.plot(node=7)
    with pytest.raises(flowmpi.ParamError, match=".svg or .png"):
        fig.save(tmp_path / f"plot-x{ctx.rank}.jpg")
