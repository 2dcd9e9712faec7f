#!/usr/bin/env python3
"""Test data and MDP / numpy reference values for sfa, sfa2, quadratic, fda, pca, svd and hist.

Needs MDP 3.6, which needs numpy < 1.24: give it its own venv, e.g.
    python3 -m venv /tmp/mdpvenv && /tmp/mdpvenv/bin/pip install numpy==1.23.5 scipy==1.10.1 MDP
    /tmp/mdpvenv/bin/python scripts/make_mdp_refs.py
Writes tests/data/{sfa,fda,mdpflow}/ and tests/expected/mdp.json. Eigenvector signs are made
deterministic with flowmpi's rule (largest-magnitude entry positive) so vectors compare directly.
Non-contiguous SFA reference: MDP trained with one chunk per shard file (a shard boundary is a
break in the series); contiguous: MDP trained on the whole concatenated series.
"""
import json
import os

import mdp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def path(*p):
    full = os.path.join(ROOT, *p)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def write_csv(p, header, rows):
    with open(path(p), "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(v if isinstance(v, str) else repr(float(v)) for v in r) + "\n")


def sign_cols(v):
    v = np.array(v, dtype=float)
    for j in range(v.shape[1]):
        if v[np.argmax(np.abs(v[:, j])), j] < 0:
            v[:, j] = -v[:, j]
    return v


def sfa_data():
    t = np.arange(600.0)
    slow = np.column_stack([np.sin(2 * np.pi * t / 500), np.cos(2 * np.pi * t / 333)])
    fast = np.column_stack([np.sin(2 * np.pi * t / 7.3), np.sin(2 * np.pi * t / 3.1 + 1)])
    rng = np.random.default_rng(21)
    s = np.hstack([slow, fast]) + 0.01 * rng.standard_normal((600, 4))
    mix = rng.standard_normal((4, 4))
    x = s @ mix + 0.3 * (s[:, [0]] * s[:, [2]]) @ rng.standard_normal((1, 4))
    return np.round(x, 8) + 0.0


def sfa_refs():
    x = sfa_data()
    sizes = [300, 0, 200, 100]
    at, parts = 0, []
    for k, n in enumerate(sizes):
        write_csv(f"tests/data/sfa/part{k}.csv", [f"s{j}" for j in range(4)], x[at:at + n])
        parts.append(x[at:at + n])
        at += n
    write_csv("tests/data/sfa_single/part0.csv", [f"s{j}" for j in range(4)], x[:50])
    write_csv("tests/data/sfa_single/part1.csv", [f"s{j}" for j in range(4)], x[50:51])
    chunks = [p for p in parts if len(p)]
    out = {}
    node = mdp.nodes.SFANode(output_dim=3)
    for c in chunks:
        node.train(c)
    node.stop_training()
    out["sfa"] = {"delta": node.d.tolist(), "projection": sign_cols(node.sf).T.tolist(), "mean": node.avg.tolist()}
    node = mdp.nodes.SFANode(output_dim=3)
    node.train(x)
    node.stop_training()
    out["sfa_contiguous"] = {"delta": node.d.tolist(), "projection": sign_cols(node.sf).T.tolist()}
    node = mdp.nodes.SFA2Node(output_dim=3)
    for c in chunks:
        node.train(c)
    node.stop_training()
    out["sfa2"] = {"delta": node.d.tolist(), "projection": sign_cols(node.sf).T.tolist()}
    q = mdp.nodes.QuadraticExpansionNode()
    out["quadratic_first_rows"] = q.execute(x[:3]).tolist()
    p = mdp.nodes.PCANode(output_dim=2)
    p.train(x)
    p.stop_training()
    out["pca"] = {"eigenvalues": p.d.tolist(), "components": sign_cols(p.v).T.tolist()}
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    out["svd"] = {"singular_values": s.tolist(), "components": sign_cols(vt.T).T.tolist()}
    out["hist"] = {"edges": [], "counts": []}
    for j in range(4):
        c, e = np.histogram(x[:, j], bins=7)
        out["hist"]["edges"].append(e.tolist())
        out["hist"]["counts"].append(c.tolist())
    return out


def fda_refs():
    rng = np.random.default_rng(22)
    n = 400
    lab = rng.choice(["a", "b", "c"], size=n)
    centers = {"a": [0, 0, 0], "b": [2, 1, 0], "c": [0, 3, 1]}
    x = np.array([centers[l] for l in lab]) + rng.standard_normal((n, 3)) @ np.array([[1, 0.3, 0], [0, 1, 0.5], [0, 0, 0.7]])
    x = np.round(x, 8) + 0.0
    lab[300:] = "c"  # shard 3 holds only class c
    sizes = [200, 0, 100, 100]
    at = 0
    for k, m in enumerate(sizes):
        write_csv(f"tests/data/fda/part{k}.csv", ["f0", "f1", "f2", "label"], [list(r) + [l] for r, l in zip(x[at:at + m], lab[at:at + m])])
        at += m
    write_csv("tests/data/fda_one_class/part0.csv", ["f0", "f1", "f2", "label"], [list(r) + ["a"] for r in x[:20]])
    node = mdp.nodes.FDANode(output_dim=2)
    node.train(x, lab)
    node.stop_training()
    node.train(x, lab)
    node.stop_training()
    # MDP keeps only the vectors; with vᵀ S_T v = 1 the eigenvalues are vᵀ S_W v.
    sw = sum((x[lab == c] - x[lab == c].mean(axis=0)).T @ (x[lab == c] - x[lab == c].mean(axis=0)) for c in "abc")
    eig = np.diag(node.v.T @ sw @ node.v)
    return {"eigenvalues": eig.tolist(), "projection": sign_cols(node.v).T.tolist(), "mean": node.avg.tolist()}


def mdpflow():
    """The MDP parallel documentation's flow: PCA 100 -> 10, then SFA2 10 -> 10, on 4 shards."""
    rng = np.random.default_rng(23)
    t = np.arange(800.0)[:, None]
    sources = np.hstack([np.sin(2 * np.pi * t / p) for p in [400, 170, 90, 40, 21, 13, 9, 7, 5, 3.3, 2.7, 2.2]])
    x = sources @ rng.standard_normal((12, 100)) + 0.05 * rng.standard_normal((800, 100))
    for k in range(4):
        np.save(path(f"tests/data/mdpflow/x{k}.npy"), x[k * 200:(k + 1) * 200])
    flow = mdp.Flow([mdp.nodes.PCANode(output_dim=10), mdp.nodes.SFA2Node(output_dim=10)])
    flow.train([[x[k * 200:(k + 1) * 200] for k in range(4)]] * 2)
    return {"sfa2_delta": flow[1].d.tolist(), "pca_eigenvalues": flow[0].d.tolist()}


if __name__ == "__main__":
    ref = {"mdp_version": mdp.__version__, "numpy_version": np.__version__}
    ref.update(sfa_refs())
    ref["fda"] = fda_refs()
    ref["mdpflow"] = mdpflow()
    with open(path("tests/expected/mdp.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("wrote tests/data/{sfa,sfa_single,fda,fda_one_class,mdpflow} and tests/expected/mdp.json")
