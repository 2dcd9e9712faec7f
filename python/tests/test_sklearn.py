"""Models from flowmpi.fit on uneven ranks (one empty from 3 ranks) against scikit-learn on the
concatenated rows: PCA, ridge, GaussianNB, MultinomialNB and k-means from the same initial
centroids. Bounds follow the conditioning of each problem."""

import os

import numpy as np
import pytest

import flowmpi
from conftest import global_rows, split

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is installed by scripts/python_setup.sh")
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.naive_bayes import GaussianNB, MultinomialNB  # noqa: E402


def mine(a, ctx):
    return a[split(len(a), ctx.size, ctx.rank)]


def test_pca(ctx):
    X = global_rows(n=400, d=6, seed=21)
    model = flowmpi.fit("pca(n=3)", mine(X, ctx))
    ref = PCA(n_components=3, svd_solver="full").fit(X)
    node = model.nodes[0]
    w = ref.explained_variance_
    np.testing.assert_allclose(node.explained_variance_ratio, ref.explained_variance_ratio_, rtol=0, atol=1e-12)
    signs = np.sign(np.sum(node.components * ref.components_, axis=1))
    gap = np.min(-np.diff(np.concatenate([w, [np.linalg.eigvalsh(np.cov(X, rowvar=False))[-4]]])))
    assert np.abs(node.components * signs[:, None] - ref.components_).max() <= 1e-12 * w[0] / gap
    Y = model.transform(X) * signs
    assert np.abs(Y - ref.transform(X)).max() <= 1e-9 * np.abs(X).max()


def test_ridge_for_two_alphas(ctx):
    X = global_rows(n=300, d=4, seed=5)
    y = X @ np.array([0.5, -1.0, 2.0, 0.0]) + np.cos(np.arange(300))
    table = np.column_stack([X, y])
    model = flowmpi.fit("ridge(alpha=[0.1, 10], target=y)", mine(table, ctx), columns=["a", "b", "c", "d", "y"])
    fits = model.nodes[0].fits
    cond = np.linalg.cond(np.column_stack([X - X.mean(axis=0)]))
    for alpha, fit in zip([0.1, 10.0], fits):
        ref = Ridge(alpha=alpha, solver="cholesky").fit(X, y)
        scale = np.abs(ref.coef_).max()
        assert np.abs(np.ravel(fit.coefficients) - ref.coef_).max() <= 1e-13 * cond**2 * scale
        assert abs(float(np.ravel(fit.intercept)[0]) - ref.intercept_) <= 1e-13 * cond**2 * max(scale * np.abs(X).max(), 1.0)


def test_gaussian_and_multinomial_naive_bayes(ctx):
    r = np.random.default_rng(8)
    n = 360
    c = np.arange(n) % 4
    X = r.standard_normal((n, 3)) + c[:, None] * np.array([1.0, -0.5, 0.25])
    model = flowmpi.fit("gnb(label=c)", mine(np.column_stack([X, c]), ctx), columns=["a", "b", "d", "c"])
    ref = GaussianNB().fit(X, c)
    assert model.classes == ["0", "1", "2", "3"]
    assert np.abs(model.predict_proba(X) - ref.predict_proba(X)).max() <= 1e-10
    counts = r.poisson(1.0 + c[:, None] * np.array([0.5, 1.0, 2.0, 0.1, 3.0]), (n, 5)).astype(float)
    model = flowmpi.fit("mnb(label=c, alpha=0.5)", mine(np.column_stack([counts, c]), ctx), columns=["w0", "w1", "w2", "w3", "w4", "c"])
    ref = MultinomialNB(alpha=0.5).fit(counts, c)
    node = model.nodes[-1]
    np.testing.assert_allclose(node.feature_log_prob, ref.feature_log_prob_, rtol=1e-13, atol=0)
    np.testing.assert_allclose(node.class_log_prior, ref.class_log_prior_, rtol=1e-13, atol=0)
    assert np.abs(model.predict_proba(counts) - ref.predict_proba(counts)).max() <= 1e-12


def test_kmeans_from_the_same_initial_centroids(ctx, shared):
    r = np.random.default_rng(13)
    centres = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
    X = np.concatenate([c + r.standard_normal((150, 2)) for c in centres])[r.permutation(450)]
    init = X[[0, 1, 2]] + 0.5
    path = os.path.join(shared, f"init{ctx.size}.csv")
    if ctx.rank == 0:
        np.savetxt(path, init, delimiter=",", header="a,b", comments="")
    ctx.barrier()
    model = flowmpi.fit(f"kmeans(init={path}, max_iter=100, tol=0)", mine(X, ctx), columns=["a", "b"])
    ref = KMeans(n_clusters=3, init=init, n_init=1, max_iter=100, tol=0, algorithm="lloyd").fit(X)
    km = model.nodes[0]
    assert np.abs(km.centroids - ref.cluster_centers_).max() <= 1e-12 * np.abs(X).max()
    assert abs(km.inertia - ref.inertia_) <= 1e-10 * ref.inertia_
    labels = model.predict(X)[:, model.output_columns.index("cluster")]
    assert np.array_equal(labels, ref.labels_)


def test_score_equals_scikit_learns_metrics(ctx):
    from sklearn.metrics import accuracy_score, r2_score

    X = global_rows(n=300, d=3, seed=17)
    y = X @ np.array([1.0, -0.5, 0.25]) + np.sin(np.arange(300)) * 3.0
    s = split(300, ctx.size, ctx.rank)
    model = flowmpi.fit("linreg(target=y)", np.column_stack([X, y])[s], columns=["a", "b", "c", "y"])
    got = model.score(X[s], y[s])
    pred = model.predict(X)[:, -1]
    assert got["task"] == "regression" and got["rows"] == 300
    assert abs(got["r2"][0] - r2_score(y, pred)) <= 1e-12
    assert abs(got["rmse"][0] - np.sqrt(np.mean((y - pred) ** 2))) <= 1e-12 * np.abs(y).max()
    c = (X[:, 0] > np.median(X[:, 0])).astype(float) + (X[:, 1] > 0)
    model = flowmpi.fit("gnb(label=c)", np.column_stack([X, c])[s], columns=["a", "b", "d", "c"])
    got = model.score(X[s], c[s])
    ref = GaussianNB().fit(X, c)
    assert got["accuracy"] == accuracy_score(c, ref.predict(X))
    with pytest.raises(ValueError, match="no targets or labels"):
        flowmpi.fit("pca(n=1)", X[s]).score(X[s], c[s])
    assert flowmpi.fit("pca(n=1)", X[s]).score(X[s])["task"] == "reconstruction"
