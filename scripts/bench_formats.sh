#!/usr/bin/env bash
# Input formats side by side: covariance over the same N x D float64 rows (default 4,000,000 x
# 32) stored as NPY, Parquet (uncompressed: with pyarrow's default dictionary encoding, and
# plain; snappy) and HDF5 (contiguous and gzip-chunked), trained by flowmpi on RANKS ranks (default 2), beside one Python process reading the same
# file the usual way (numpy.load, pyarrow, pandas, h5py) and taking numpy's covariance. Every
# variant runs once per round, REPEAT rounds (default 3), so all share the machine's state; the
# table shows each one's best time and its ratio to flowmpi on NPY. Page cache warm.
#
#   bash scripts/bench_formats.sh                 # needs .venv with pyarrow, pandas, h5py
#   N=1000000 RANKS=1 REPEAT=5 bash scripts/bench_formats.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
N=${N:-4000000}; D=${D:-32}; RANKS=${RANKS:-2}; REPEAT=${REPEAT:-3}
PY=${PY:-.venv/bin/python}
DIR=${BENCH_DIR:-/tmp/flowmpi-bench}/formats_n${N}d${D}
export OPENBLAS_NUM_THREADS=1
"$PY" -c "import pyarrow, pandas, h5py" 2>/dev/null || "$PY" -m pip install -q pyarrow pandas h5py
[ -f "$DIR/x_plain.parquet" ] || "$PY" scripts/bench_formats.py make "$DIR" --n "$N" --d "$D"
cargo build --release -q
B=target/release/flowmpi
cat "$DIR"/* > /dev/null
variants="npy parquet parquet_plain parquet_snappy hdf5 hdf5_gzip py_numpy py_pyarrow py_pandas py_h5py"
declare -A best
run() { # variant -> seconds
  local t0 t1
  case $1 in
    py_*) "$PY" scripts/bench_formats.py read "$DIR" "${1#py_}"; return ;;
    npy) data="$DIR/x.npy" ;;
    parquet) data="$DIR/x.parquet" ;;
    parquet_plain) data="$DIR/x_plain.parquet" ;;
    parquet_snappy) data="$DIR/x_snappy.parquet" ;;
    hdf5) data="$DIR/x.h5:/x" ;;
    hdf5_gzip) data="$DIR/x_gzip.h5:/x" ;;
  esac
  t0=$(date +%s.%N)
  mpirun -n "$RANKS" "$B" train -q --data "$data" --flow covariance --model /tmp/flowmpi-bench-formats.json
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
for r in $(seq "$REPEAT"); do
  for v in $variants; do
    t=$(run "$v")
    if [ -z "${best[$v]:-}" ] || [ "$(echo "$t < ${best[$v]}" | bc -l)" = 1 ]; then best[$v]=$t; fi
  done
done
printf "covariance of %s x %s float64 rows; flowmpi on %s rank(s), Python one process; best of %s\n" "$N" "$D" "$RANKS" "$REPEAT"
printf "%-16s %9s %9s\n" variant seconds "x NPY"
for v in $variants; do
  printf "%-16s %9.3f %9.2f\n" "$v" "${best[$v]}" "$(echo "${best[$v]} / ${best[npy]}" | bc -l)"
done
rm -f /tmp/flowmpi-bench-formats.json
