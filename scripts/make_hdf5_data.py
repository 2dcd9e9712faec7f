"""Makes the HDF5 test files (checked in) with h5py, and one with the C library's own h5import,
so that flowmpi's reader is tested against files the usual tools write:

    .venv/bin/python scripts/make_hdf5_data.py      # needs h5py, and h5import (hdf5-tools)

tests/data/hdf5/part{0..3}.h5: tests/data/nasty's shards (700, 0, 300, 2 rows; float64) as
  dataset /run/x with the column names in its attribute 'columns': part0 chunked (64 rows) and
  gzip-compressed, part1 empty, part2 contiguous, part3 chunked with shuffle + gzip and the names
  as fixed-length byte strings (numpy's 'S' type).
tests/data/hdf5_gnb/part{0..3}.h5: tests/data/gnb's shards, dataset /gnb, names in 'column_names'.
tests/data/hdf5_bad/: types.h5 (one dataset of each: int16 2-D, uint8 1-D, float32 2-D, float16
  1-D, bool 1-D),
  several.h5 (two datasets), cube.h5 (3-D), text.h5 (strings), badnames.h5 (3 names, 2 columns).
tests/data/hdf5_c/grid.h5: h5import's float64 4 x 3 dataset /grid from grid.txt (also checked in).
"""

import csv
import os
import subprocess

import h5py
import numpy as np

root = os.path.join(os.path.dirname(__file__), "..", "tests", "data")


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64).reshape(-1, len(rows[0]))


def out(*parts):
    p = os.path.join(root, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if os.path.exists(p):
        os.remove(p)
    return p


for i in range(4):
    names, x = read_csv(os.path.join(root, "nasty", f"part{i}.csv"))
    with h5py.File(out("hdf5", f"part{i}.h5"), "w") as f:
        g = f.create_group("run")
        if i == 0:
            d = g.create_dataset("x", data=x, chunks=(64, x.shape[1]), compression="gzip")
        elif i == 3:
            d = g.create_dataset("x", data=x, chunks=(1, x.shape[1]), shuffle=True, compression="gzip")
        else:
            d = g.create_dataset("x", data=x)
        d.attrs["columns"] = np.array([n.encode() for n in names]) if i == 3 else names
        f.attrs["note"] = "flowmpi test data"

for i in range(4):
    names, x = read_csv(os.path.join(root, "gnb", f"part{i}.csv"))
    with h5py.File(out("hdf5_gnb", f"part{i}.h5"), "w") as f:
        f.create_dataset("gnb", data=x).attrs["column_names"] = names

with h5py.File(out("hdf5_bad", "types.h5"), "w") as f:
    f.create_dataset("i16", data=np.array([[1, -2], [3, -4], [5, -6]], dtype=np.int16))
    f.create_dataset("u8", data=np.array([0, 7, 255], dtype=np.uint8))
    f.create_dataset("f32", data=np.array([[0.5, 0.25], [-1.5, 2.0], [3.0, 4.0]], dtype=np.float32))
    f.create_dataset("f16", data=np.array([1.5, -2.0, 65504.0], dtype=np.float16))
    f.create_dataset("flag", data=np.array([True, False, True]))
with h5py.File(out("hdf5_bad", "several.h5"), "w") as f:
    f.create_dataset("a", data=np.zeros((2, 2)))
    f.create_dataset("deep/b", data=np.zeros((2, 2)))
with h5py.File(out("hdf5_bad", "cube.h5"), "w") as f:
    f.create_dataset("cube", data=np.zeros((2, 2, 2)))
with h5py.File(out("hdf5_bad", "text.h5"), "w") as f:
    f.create_dataset("text", data=np.array([b"a", b"b"]))
with h5py.File(out("hdf5_bad", "badnames.h5"), "w") as f:
    f.create_dataset("x", data=np.zeros((2, 2))).attrs["columns"] = ["a", "b", "c"]

# The C tools' own writer: h5import reads whitespace-separated text under a configuration.
txt = out("hdf5_c", "grid.txt")
grid = np.arange(12, dtype=np.float64).reshape(4, 3) * 0.25 - 1.0
with open(txt, "w") as f:
    for row in grid:
        f.write(" ".join(repr(float(v)) for v in row) + "\n")
cfg = out("hdf5_c", "grid.cfg")
with open(cfg, "w") as f:
    f.write("PATH grid\nINPUT-CLASS TEXTFP\nINPUT-SIZE 64\nRANK 2\nDIMENSION-SIZES 4 3\nOUTPUT-CLASS FP\nOUTPUT-SIZE 64\n")
subprocess.run(["h5import", txt, "-c", cfg, "-o", out("hdf5_c", "grid.h5")], check=True)
os.remove(cfg)
print("wrote tests/data/hdf5, hdf5_gnb, hdf5_bad, hdf5_c")
