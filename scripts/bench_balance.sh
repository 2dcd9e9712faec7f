#!/usr/bin/env bash
# How evenly a glob's files are shared out: one big NPY file among three small ones (96 % of
# the bytes in one file), trained with this checkout's build and with BASE's (a git revision),
# alternating, REPEAT times each; prints the best wall times and their ratio, and checks that
# both builds give the same covariance (to round-off). Before files were dealt out by bytes,
# one rank read the big file alone while the others idled.
#
#   BASE=3fb171a bash scripts/bench_balance.sh            # 2 ranks
#   BASE=3fb171a RANKS=4 REPEAT=5 bash scripts/bench_balance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
set +u
BASE=${BASE:-HEAD}; RANKS=${RANKS:-2}; REPEAT=${REPEAT:-3}; ROWS=${ROWS:-1500000}
FLOW=${FLOW:-"quadratic | covariance"}
DIR=${BENCH_DIR:-/tmp/flowmpi-bench}/balance$ROWS
source scripts/ab_builds.sh
if [ ! -f "$DIR/b2.npy" ]; then
  mkdir -p "$DIR"
  python3 - "$DIR" "$ROWS" <<'PYEOF'
import sys, numpy as np
d, n = sys.argv[1], int(sys.argv[2])
r = np.random.default_rng(0)
np.save(f"{d}/a_big.npy", r.normal(size=(n, 16)))
for k in range(3):
    np.save(f"{d}/b{k}.npy", r.normal(size=(n // 75, 16)))
PYEOF
fi
cat "$DIR"/*.npy > /dev/null   # warm the page cache

wall() { # bin model -> seconds of one run
  local t0 t1
  t0=$(date +%s.%N)
  FLOWMPI_THREADS=1 mpirun -n "$RANKS" "$1" -q train --data "$DIR/*.npy" --flow "$FLOW" --model "$2" 2>"$TMP/log" \
    || { echo "bench_balance: FAILED: $1" >&2; cat "$TMP/log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
best_old=999999; best_new=999999
for _ in $(seq "$REPEAT"); do
  t=$(wall "$OLD" "$TMP/old.json"); best_old=$(echo "if ($t < $best_old) $t else $best_old" | bc -l)
  t=$(wall "$NEW" "$TMP/new.json"); best_new=$(echo "if ($t < $best_new) $t else $best_new" | bc -l)
done
python3 - "$TMP/old.json" "$TMP/new.json" <<'PYEOF'
import json, sys
import numpy as np
a, b = (np.array(json.load(open(p))["nodes"][-1]["covariance"]) for p in sys.argv[1:])
rel = np.abs(a - b).max() / np.abs(a).max()
assert rel < 1e-10, f"the builds disagree: {rel}"
print(f"same covariance (max relative difference {rel:.1e})")
PYEOF
printf "%d ranks, %s: base %.3f s, new %.3f s, base/new %.2f\n" "$RANKS" "$FLOW" "$best_old" "$best_new" "$(echo "$best_old / $best_new" | bc -l)"
