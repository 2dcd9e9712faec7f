"""Makes the Parquet test files (checked in) with pyarrow, so that flowmpi's reader is tested
against files the usual tools write:

    .venv/bin/python scripts/make_parquet_data.py      # needs pyarrow

tests/data/parquet/part{0..3}.parquet: tests/data/nasty's shards (700, 0, 300, 2 rows; float64)
  in row groups of 128 (snappy), -, 100 (zstd) and 1 rows (uncompressed).
tests/data/parquet_gnb/part{0..3}.parquet: tests/data/gnb's shards, the label as a string column.
tests/data/parquet_bad/nulls.parquet: 10 rows of (a, b), b null on row 5 (1-based), and
  types.parquet: int32, int64, float32 and boolean columns and a string column, 6 rows.
tests/data/parquet_pages/*.parquet: the same 1,500 rows of four float64 columns in the page
  layouts writers use, for flowmpi's own page decoder: data pages v1 and v2, dictionary-encoded
  (falling back to plain when the dictionary fills up) and plain, uncompressed, snappy and zstd,
  small pages, row groups of 600; and byte_stream_split (read by the crate's reader). Columns:
  d (50 distinct values with NaN, inf and -0.0; 10% null at random), r (random, no nulls; its
  dictionary overflows), q (non-nullable, 3 distinct values), n (null but every 97th row).
  values.csv: the rows as Python's repr of each float (empty for a null), exact.
"""

import csv
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

root = os.path.join(os.path.dirname(__file__), "..", "tests", "data")


def read_csv(path, text=()):
    with open(path) as f:
        rows = list(csv.reader(f))
    names, body = rows[0], rows[1:]
    cols = {}
    for j, n in enumerate(names):
        vals = [r[j] for r in body]
        cols[n] = pa.array(vals, pa.string()) if n in text else pa.array([float(v) for v in vals], pa.float64())
    return pa.table(cols)


def write(table, path, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, **kw)


groups = [(128, "snappy"), (128, "snappy"), (100, "zstd"), (1, "none")]
for i, (size, codec) in enumerate(groups):
    t = read_csv(os.path.join(root, "nasty", f"part{i}.csv"))
    write(t, os.path.join(root, "parquet", f"part{i}.parquet"), row_group_size=size, compression=codec)

for i in range(4):
    src = os.path.join(root, "gnb", f"part{i}.csv")
    t = read_csv(src, text=("label",))
    write(t, os.path.join(root, "parquet_gnb", f"part{i}.parquet"), row_group_size=50)

a = pa.array([float(i) for i in range(10)])
b = pa.array([None if i == 4 else 10.0 * i for i in range(10)], pa.float64())
write(pa.table({"a": a, "b": b}), os.path.join(root, "parquet_bad", "nulls.parquet"), row_group_size=4)
types = pa.table({
    "i32": pa.array([1, -2, 3, -4, 5, -6], pa.int32()),
    "i64": pa.array([10**12, 2, 3, 4, 5, 6], pa.int64()),
    "f32": pa.array([0.5, 0.25, -1.5, 2.0, 3.0, 4.0], pa.float32()),
    "flag": pa.array([True, False, True, True, False, True]),
    "name": pa.array(["a", "b", "c", "d", "e", "f"]),
})
write(types, os.path.join(root, "parquet_bad", "types.parquet"), row_group_size=4)
rng = random.Random(7)
rows = 1500
distinct = [float("nan"), float("inf"), -0.0, 0.0] + [rng.uniform(-1e3, 1e3) for _ in range(46)]
cols = {
    "d": [None if rng.random() < 0.1 else rng.choice(distinct) for _ in range(rows)],
    "r": [rng.gauss(0, 1) * 10 ** rng.randint(-5, 5) for _ in range(rows)],
    "q": [[1.5, -2.25, 1e300][i % 7 % 3] for i in range(rows)],
    "n": [float(i) if i % 97 == 0 else None for i in range(rows)],
}
schema = pa.schema([pa.field("d", pa.float64()), pa.field("r", pa.float64()), pa.field("q", pa.float64(), nullable=False), pa.field("n", pa.float64())])
pages = pa.table({k: pa.array(v, pa.float64()) for k, v in cols.items()}, schema=schema)
layouts = {
    "v1.parquet": dict(data_page_version="1.0", compression="none"),
    "v2_snappy.parquet": dict(data_page_version="2.0", compression="snappy"),
    "plain_zstd.parquet": dict(use_dictionary=False, compression="zstd"),
    "byte_stream_split.parquet": dict(use_dictionary=False, use_byte_stream_split=True, compression="none"),
}
for name, kw in layouts.items():
    write(pages, os.path.join(root, "parquet_pages", name), row_group_size=600, data_page_size=1024, write_batch_size=64, dictionary_pagesize_limit=2048, **kw)
with open(os.path.join(root, "parquet_pages", "values.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(cols)
    for i in range(rows):
        w.writerow(["" if cols[k][i] is None else repr(cols[k][i]) for k in cols])
print("wrote tests/data/parquet, parquet_gnb, parquet_bad, parquet_pages")
