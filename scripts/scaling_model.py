#!/usr/bin/env python3
"""Strong-scaling model of a covariance/PCA training: time per rank against the rank count.

    t(P) = local + join
    local = n * d^2 / P / F              (each rank's Gram update over its n/P rows)
    join  = 2 * ceil(log2 P) * (alpha + 8 * d^2 * beta)
            (flowmpi reduces the d x d sums to rank 0 and broadcasts them: two binomial trees)

F, this machine's Gram rate per rank, is measured here by training `covariance` on one rank
over an NPY file (flowmpi -v reports the local time); alpha and beta are the interconnect's
latency and inverse bandwidth, given (defaults: 2 us and 12.5 GB/s, an HDR InfiniBand link).
Plain Python, no numpy. Prints a Markdown table for the README.

Usage: python3 scripts/scaling_model.py [--rows N] [--alpha S] [--bandwidth BYTES_PER_S]
"""
import argparse
import math
import os
import re
import struct
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target", "release", "flowmpi")


def write_npy(path, rows, cols):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        row = struct.pack("<%dd" % cols, *[(j * 0.37) % 1.0 for j in range(cols)])
        for i in range(rows):
            # Rows differ by a shift, so nothing is constant; the rate does not depend on values.
            f.write(row[8:] + struct.pack("<d", i * 1e-3))


def measure_rate(rows=100_000, cols=256):
    """Gram flops per second of one rank: n * d^2 over the local time flowmpi reports."""
    with tempfile.TemporaryDirectory() as tmp:
        x = os.path.join(tmp, "x.npy")
        write_npy(x, rows, cols)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        best = math.inf
        for _ in range(3):
            out = subprocess.run([BIN, "-v", "train", "--data", x, "--flow", "covariance", "--model", os.path.join(tmp, "m.json")],
                                 env=env, capture_output=True, text=True, check=True).stderr
            local = float(re.search(r"read\+local ([0-9.]+) s", out).group(1))
            best = min(best, local)
    return rows * cols * cols / best


def model(n, d, p, rate, alpha, beta):
    local = n * d * d / p / rate
    join = 2 * math.ceil(math.log2(p)) * (alpha + 8 * d * d * beta) if p > 1 else 0.0
    return local, join


def fmt(t):
    return f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=float, default=1e7, help="total rows n (default 1e7)")
    ap.add_argument("--alpha", type=float, default=2e-6, help="latency per message, s (default 2e-6)")
    ap.add_argument("--bandwidth", type=float, default=12.5e9, help="bytes per second per link (default 12.5e9)")
    ap.add_argument("--rate", type=float, help="Gram flop/s per rank (default: measured here)")
    a = ap.parse_args()
    rate = a.rate or measure_rate()
    beta = 1 / a.bandwidth
    ds = [32, 1000, 10000]
    ps = [2 ** k for k in range(11)]
    print(f"n = {a.rows:.0e} rows; F = {rate / 1e9:.2f} GFlop/s per rank (measured: covariance, 1 rank, NPY); "
          f"alpha = {a.alpha * 1e6:g} us, {a.bandwidth / 1e9:g} GB/s\n")
    print("| ranks | " + " | ".join(f"d = {d}: local + join" for d in ds) + " |")
    print("|---:|" + "---:|" * len(ds))
    for p in ps:
        cells = []
        for d in ds:
            local, join = model(a.rows, d, p, rate, a.alpha, beta)
            mark = " *" if join > local else ""
            cells.append(f"{fmt(local + join)} ({fmt(local)} + {fmt(join)}){mark}")
        print(f"| {p} | " + " | ".join(cells) + " |")
    print()
    for d in ds:
        cross = next((p for p in range(1, 1 << 20) if p > 1 and model(a.rows, d, p, rate, a.alpha, beta)[1] > model(a.rows, d, p, rate, a.alpha, beta)[0]), None)
        best = min(ps, key=lambda p: sum(model(a.rows, d, p, rate, a.alpha, beta)))
        print(f"- d = {d}: the join outweighs the local work from {cross} ranks on; the fastest of 1..1024 is {best} ranks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
