#!/usr/bin/env bash
# `train --reproducible` against the same training without it, in the same session: NPY shards
# (FILES files, 1,000,000 x COLS rows in all; FILES=1: one file split among the ranks), flow FLOW, 1 and 2 ranks, best of REPEAT runs
# each, alternating. Prints the wall seconds and the ratio. Needs numpy; run after
# `source scripts/setup.sh && cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/target/release/flowmpi
FILES=${FILES:-32} COLS=${COLS:-33} REPEAT=${REPEAT:-5}
FLOW=${FLOW:-'moments | covariance | pca(n=4)'}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" "$FILES" "$COLS" <<'PY'
import sys
import numpy as np
d, files, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(1)
for s in range(files):
    np.save(f"{d}/part{s:03d}.npy", rng.normal(size=(1_000_000 // files, cols)) + 1e3)
PY
export OPENBLAS_NUM_THREADS=1
# One file is named as such (a glob of one file is split among the ranks too).
data="$dir/part*.npy"
[ "$FILES" = 1 ] && data="$dir/part000.npy"
secs() {  # wall seconds of one training
  local t0 t1
  t0=$(date +%s.%N)
  mpirun --oversubscribe -n "$1" "$BIN" -q train --data "$data" --flow "$FLOW" --model "$dir/m.json" "${@:2}"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
for n in 1 2; do
  best_plain=999 best_repro=999
  for _ in $(seq "$REPEAT"); do
    p=$(secs "$n"); r=$(secs "$n" --reproducible)
    best_plain=$(echo "if ($p < $best_plain) $p else $best_plain" | bc)
    best_repro=$(echo "if ($r < $best_repro) $r else $best_repro" | bc)
  done
  awk -v n="$n" -v p="$best_plain" -v r="$best_repro" -v f="$FILES" -v c="$COLS" \
    'BEGIN {printf "%d rank(s), %d files x %d cols: plain %.3f s, --reproducible %.3f s: %.3f x\n", n, f, c, p, r, r/p}'
done
