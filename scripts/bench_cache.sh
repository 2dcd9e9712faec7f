#!/usr/bin/env bash
# `train --cache`: 32 CSV shards (50,000 x 16 each, ~490 MB), 2 ranks, flow
# 'moments | covariance | pca(n=4)': training seconds of a run without the cache, a cold run
# that fills it, a warm run, and a run after one shard changed; ratios against the no-cache run
# of the same session. Run after `source scripts/setup.sh && cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/target/release/flowmpi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/data" <<'PY'
import os, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d)
rng = np.random.default_rng(1)
for s in range(32):
    np.savetxt(f"{d}/part{s:02d}.csv", rng.normal(size=(50000, 16)), delimiter=",", fmt="%.17g",
               header=",".join(f"x{j}" for j in range(16)), comments="")
PY
run() {  # seconds of training as flowmpi reports them
  mpirun --oversubscribe -n 2 "$BIN" train --data "$dir/data/part*.csv" --flow 'moments | covariance | pca(n=4)' \
    --model "$dir/m.json" "$@" 2>&1 | sed -n 's/.*(\([0-9.]*\) s in all)/\1/p'
}
plain=$(run)
cold=$(run --cache "$dir/cache")
warm=$(run --cache "$dir/cache")
python3 -c "import numpy as np; np.savetxt('$dir/data/part07.csv', np.random.default_rng(9).normal(size=(50000, 16)), delimiter=',', fmt='%.17g', header=','.join(f'x{j}' for j in range(16)), comments='')"
changed=$(run --cache "$dir/cache")
for k in plain cold warm changed; do
  awk -v k="$k" -v s="${!k}" -v p="$plain" 'BEGIN {printf "%-8s %7.3f s  %.3f x the run without the cache\n", k, s, s/p}'
done
