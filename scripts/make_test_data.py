#!/usr/bin/env python3
"""Make flowmpi's example and test data, and the numpy reference values the tests check.

Deterministic (fixed seeds). Writes
  data/example/part{0..3}.csv      the shipped example (uneven shards, 8 columns, header)
  tests/data/nasty/part{0..3}.csv  mean ~1e8, std 1e-2..10; shard sizes 700, 0, 300, 2
  tests/data/nasty_npy/part*.npy   the same values as float64 .npy
  tests/data/single/all.csv        the example data in one file (ranks split it by bytes)
  tests/data/quirky/q.csv          ';' delimiter, comments, quoted fields, CRLF, blank lines
  tests/data/f32/x.npy             float32 .npy
  tests/data/bad/...               inputs for the error tests
  tests/data/sort/part{0..3}.csv   keys with many ties and signed zeros; shard sizes 517, 0, 233, 1250
  tests/data/sort_npy/part*.npy    the same numeric columns as float64 .npy
  tests/expected/*.json            reference values computed here with numpy (two-pass)

Reference values are computed from the files as written (parsed back with numpy), by plain
single-process two-pass formulas on the concatenated rows -- independent of flowmpi's code.
Run from the repository root:  python3 scripts/make_test_data.py
"""
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def path(*p):
    full = os.path.join(ROOT, *p)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def write_csv(p, names, x, fmt=repr, sep=",", eol="\n"):
    with open(path(p), "w", newline="") as f:
        f.write(sep.join(names) + eol)
        for row in x:
            f.write(sep.join(fmt(float(v)) for v in row) + eol)


def read_csv(p):
    a = np.loadtxt(path(p), delimiter=",", skiprows=1, ndmin=2)
    return a


def sign_fix(vecs):
    """Rows = components; make each row's largest-|entry| positive (flowmpi's rule)."""
    out = vecs.copy()
    for i, v in enumerate(out):
        if v[np.argmax(np.abs(v))] < 0:
            out[i] = -v
    return out


def pca_ref(x, corr=False):
    mean = x.mean(axis=0)
    c = x - mean
    cov = c.T @ c / (len(x) - 1)
    scale = np.ones(x.shape[1])
    m = cov
    if corr:
        scale = np.sqrt(np.diag(cov))
        m = cov / np.outer(scale, scale)
    vals, vecs = np.linalg.eigh(m)
    order = np.argsort(vals)[::-1]
    vals, comps = vals[order], sign_fix(vecs[:, order].T)
    return mean, scale, vals, comps


def moments_ref(x):
    n = len(x)
    mean = x.mean(axis=0)
    ssc = ((x - mean) ** 2).sum(axis=0)
    var = ssc / (n - 1)
    return {
        "count": n, "minimum": x.min(axis=0), "maximum": x.max(axis=0), "sum": x.sum(axis=0),
        "sum_squares": (x ** 2).sum(axis=0), "sum_squares_centered": ssc, "mean": mean,
        "second_order_raw_moment": (x ** 2).sum(axis=0) / n, "variance": var,
        "standard_deviation": np.sqrt(var), "variation": np.sqrt(var) / mean,
    }


def tolist(d):
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def example():
    """Hourly air-quality readings from four stations (one shard each): a daily cycle and a
    weather factor drive temperature, humidity, pressure, wind and four pollutants."""
    rng = np.random.default_rng(20261121)
    names = ["temperature_c", "humidity_pct", "pressure_hpa", "wind_ms", "pm25", "pm10", "no2", "o3"]
    sizes = [1300, 1000, 900, 800]
    shards = []
    for s, n in enumerate(sizes):
        t = np.arange(n)
        day = np.sin(2 * np.pi * (t % 24) / 24)
        weather = np.cumsum(rng.standard_normal(n)) * 0.05
        traffic = np.clip(np.sin(2 * np.pi * ((t - 7) % 24) / 24), 0, None) + 0.2 * rng.standard_normal(n)
        temp = 12 + 2 * s + 6 * day + 3 * weather + rng.standard_normal(n)
        hum = 70 - 2.5 * (temp - 12) + 4 * rng.standard_normal(n)
        pres = 1013 - 4 * weather + 1.5 * rng.standard_normal(n)
        wind = np.abs(3 + 1.5 * weather + rng.standard_normal(n))
        pm25 = np.abs(15 + 10 * traffic - 2 * wind + 3 * rng.standard_normal(n))
        pm10 = np.abs(1.6 * pm25 + 5 + 4 * rng.standard_normal(n))
        no2 = np.abs(25 + 15 * traffic - 3 * wind + 4 * rng.standard_normal(n))
        o3 = np.abs(40 + 8 * day - 0.5 * no2 + 3 * rng.standard_normal(n))
        x = np.round(np.column_stack([temp, hum, pres, wind, pm25, pm10, no2, o3]), 3) + 0.0
        write_csv(f"data/example/part{s}.csv", names, x, fmt=lambda v: repr(round(v, 3)))
        shards.append(read_csv(f"data/example/part{s}.csv"))
    x = np.vstack(shards)
    # The same rows in one file, for the byte-range split.
    write_csv("tests/data/single/all.csv", names, x, fmt=lambda v: repr(round(v, 3)))
    mean, _, vals, comps = pca_ref(x)
    _, sd, cvals, ccomps = pca_ref(x, corr=True)
    cov = np.cov(x, rowvar=False)
    k = 3
    proj = (x - mean) @ comps[:k].T
    white = proj / np.sqrt(vals[:k])
    firsts = np.cumsum([0] + sizes[:-1])
    ratio = vals / vals.sum()
    k95 = int(np.searchsorted(np.cumsum(ratio), 0.95) + 1)
    ref = {
        "columns": names,
        "rows": int(len(x)),
        "shard_sizes": sizes,
        "moments": tolist(moments_ref(x)),
        "covariance": {"mean": mean.tolist(), "covariance": cov.tolist(),
                        "correlation": np.corrcoef(x, rowvar=False).tolist()},
        "pca": {"eigenvalues": vals.tolist(), "components": comps.tolist(),
                "explained_variance_ratio": ratio.tolist(), "k_for_var_0.95": k95},
        "pca_corr": {"eigenvalues": cvals.tolist(), "components": ccomps.tolist(), "scale": sd.tolist()},
        "pca3_first_rows_per_shard": {str(s): proj[f:f + 3].tolist() for s, f in enumerate(firsts)},
        "whitening3_first_rows_per_shard": {str(s): white[f:f + 3].tolist() for s, f in enumerate(firsts)},
    }
    with open(path("tests/expected/example.json"), "w") as f:
        json.dump(ref, f, indent=1)


def nasty():
    rng = np.random.default_rng(7)
    d = 5
    stds = np.array([1e-2, 1e-1, 1.0, 10.0, 3e-2])
    mix = np.eye(d) + 0.3 * rng.standard_normal((d, d))
    sizes = [700, 0, 300, 2]
    names = [f"v{j}" for j in range(d)]
    n = sum(sizes)
    z = rng.standard_normal((n, d)) @ mix
    x = 1e8 + np.arange(d) * 1e3 + z / np.sqrt((mix ** 2).sum(axis=0)) * stds
    at = 0
    parts = []
    for s, m in enumerate(sizes):
        part = x[at:at + m]
        at += m
        write_csv(f"tests/data/nasty/part{s}.csv", names, part)
        np.save(path(f"tests/data/nasty_npy/part{s}.npy"), np.ascontiguousarray(part, dtype=np.float64))
        back = read_csv(f"tests/data/nasty/part{s}.csv").reshape(-1, d)
        assert np.array_equal(back, part), "repr round trip"
        parts.append(back)
    x = np.vstack(parts)
    # Two-pass mean with a correction pass: x.mean() alone carries ~1e-15 relative error at 1e8.
    mean = x.mean(axis=0)
    mean = mean + (x - mean).mean(axis=0)
    c = x - mean
    cov = c.T @ c / (n - 1)
    with open(path("tests/expected/nasty.json"), "w") as f:
        json.dump({"rows": n, "mean": mean.tolist(), "covariance": cov.tolist(),
                   "variance": np.diag(cov).tolist(), "shard_sizes": sizes}, f, indent=1)


def quirky():
    # The same 6 x 3 values written with every CSV feature the reader supports.
    x = np.array([[1.5, -2.0, 3e-3], [4.0, 5.25, -6.0], [7.0, 8.0, 9.5],
                  [-1.0, 0.0, 2.0], [3.0, 3.5, 1e5], [2.0, -7.0, 0.125]])
    lines = ["# station export, semicolon separated", "\"a\";\"b col\";c", "1.5;-2;3e-3", "# a comment line",
             "\"4\";5.25; -6 ", "", "7;8;9.5", "-1.0;\"0\";+2", "3;3.5;1E5", "2;-7;0.125"]
    with open(path("tests/data/quirky/q.csv"), "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
    np.save(path("tests/data/f32/x.npy"), x.astype(np.float32))
    x32 = x.astype(np.float32).astype(np.float64)
    with open(path("tests/expected/quirky.json"), "w") as f:
        json.dump({"quirky": tolist(moments_ref(x)), "f32": tolist(moments_ref(x32))}, f, indent=1)


def bad():
    h = "a,b,c,d\n"
    good = "".join(f"{i},{i * 2},{i % 3},{i * 0.5}\n" for i in range(1, 9))
    files = {
        "parse0.csv": h + good,
        "parse1.csv": h + "1,2,3,4\n5,6,7,8\nabc,2,3,4\n9,9,9,9\n",        # line 4
        "fields0.csv": h + good,
        "fields1.csv": h + "1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3\n",   # line 6
        "cols0.csv": h + good,
        "cols1.csv": "a,b,c,d,e\n1,2,3,4,5\n6,7,8,9,10\n",
        "nan0.csv": h + good,
        "nan1.csv": h + "1,2,3,4\nnan,2,3,4\n3,2,1,0\n2,2,2,2\n",          # line 3
        "empty0.csv": h,
        "empty1.csv": h,
        "only0.csv": h + good,
    }
    for name, text in files.items():
        with open(path(f"tests/data/bad/{name}"), "w") as f:
            f.write(text)
    # what --nan skip must give: all rows of nan0 + nan1 except the NaN row
    rows = [list(map(float, l.split(","))) for l in (good + "1,2,3,4\n3,2,1,0\n2,2,2,2\n").splitlines()]
    with open(path("tests/expected/nan_skip.json"), "w") as f:
        json.dump(tolist(moments_ref(np.array(rows))), f, indent=1)


def sort_data():
    """Shards for `flowmpi sort`, and numpy's stable argsort of the concatenated rows."""
    rng = np.random.default_rng(7)
    sizes = [517, 0, 233, 1250]
    n = sum(sizes)
    ties = np.array([-0.0, 0.0, 1.5, -2.25, 3.0, 1e-300, 7.0])
    key = np.where(rng.random(n) < 0.7, ties[rng.integers(0, len(ties), n)], np.round(rng.normal(0, 5, n), 3))
    val = rng.normal(0, 1, n)
    ids = [f"s{i:05d}" if i % 7 else f"\"s,{i:05d}\"" for i in range(n)]
    at = 0
    for r, m in enumerate(sizes):
        with open(path(f"tests/data/sort/part{r}.csv"), "w") as f:
            f.write("id,key,v\n")
            for i in range(at, at + m):
                f.write(f"{ids[i]},{float(key[i])!r},{float(val[i])!r}\n")
        np.save(path(f"tests/data/sort_npy/part{r}.npy"), np.stack([key[at:at + m], val[at:at + m]], axis=1).reshape(m, 2))
        at += m
    # Parse back what was written, so the reference is of the files themselves.
    back = np.concatenate([np.loadtxt(path(f"tests/data/sort/part{r}.csv"), delimiter=",", skiprows=1, quotechar="\"",
                                      usecols=(-2, -1), ndmin=2) for r in range(4) if sizes[r]])
    assert (back[:, 0] == key).all() and (back[:, 1] == val).all()
    ref = {
        "rows": n,
        "argsort_key": np.argsort(key, kind="stable").tolist(),
        "argsort_v": np.argsort(val, kind="stable").tolist(),
        "ids": [i.strip('"') for i in ids],
    }
    with open(path("tests/expected/sort.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    example()
    nasty()
    quirky()
    bad()
    sort_data()
    print("wrote data/example, tests/data and tests/expected")
