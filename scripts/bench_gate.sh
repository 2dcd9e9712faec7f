#!/usr/bin/env bash
# The node layer's speed gate: train every listed node with this checkout's build and with the
# build of BASE (a git revision, default HEAD: the last commit), alternating the two, REPEAT
# times each, and compare the best wall times. Exits 1 when a node is more than MAX (default
# 1.05, i.e. 5 %) slower than BASE. Both builds run in the same session on the same files, so
# the ratio is meaningful on a noisy machine; the absolute times are not.
#
#   bash scripts/bench_gate.sh                      # working tree vs HEAD, 1,000,000 x 33 NPY
#   BASE=305b952 RANKS=2 bash scripts/bench_gate.sh
#   NODES="pca ridge" N=200000 REPEAT=7 bash scripts/bench_gate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
set +u
BASE=${BASE:-HEAD}; N=${N:-1000000}; D=33; RANKS=${RANKS:-1}; REPEAT=${REPEAT:-5}; MAX=${MAX:-1.05}
NODES=${NODES:-"moments covariance pca whitening ridge linreg linreg_qr sfa sfa2 svd hist kmeans gnb mnb fda"}
DIR=${BENCH_DIR:-/tmp/flowmpi-bench}/n${N}d${D}
source scripts/ab_builds.sh
[ -f "$DIR/shard3.npy" ] || python3 scripts/bench_data.py "$DIR" --n "$N" --d "$D"
# The classifiers' data: a class column (0..4) and 20 Poisson counts (mnb needs counts), N rows.
CLS=${BENCH_DIR:-/tmp/flowmpi-bench}/classes_n${N}
[ -f "$CLS/shard3.npy" ] || python3 - "$CLS" "$N" <<'PY'
import os, sys
import numpy as np
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
r = np.random.Generator(np.random.PCG64(9))
bounds = np.linspace(0, n, 5).astype(int)
for s in range(4):
    m = bounds[s + 1] - bounds[s]
    c = r.integers(0, 5, m)
    x = r.poisson(2.0 + c[:, None] * np.linspace(0.1, 1.0, 20)[None, :], (m, 20))
    np.save(os.path.join(out, f"shard{s}.npy"), np.column_stack([c, x]).astype(np.float64))
PY
cat "$DIR"/shard*.npy "$CLS"/shard*.npy > /dev/null   # warm the page cache

wall() { # bin data flow cols... -> seconds of one run
  local bin=$1 data=$2 flow=$3; shift 3
  local t0 t1
  t0=$(date +%s.%N)
  mpirun -n "$RANKS" "$bin" train --data "$data/shard*.npy" "$@" --flow "$flow" --model "$TMP/m.json" >/dev/null 2>"$TMP/log" \
    || { echo "bench_gate: FAILED: $bin $flow" >&2; cat "$TMP/log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

printf "%-11s %6s %10s %10s %7s\n" node ranks "base s" "new s" ratio
slow=0
for node in $NODES; do
  cols=(--columns "0-29"); y="x$((D - 2))"; data=$DIR
  case $node in
    gnb|mnb) flow="$node(label=x0)"; data=$CLS; cols=(--columns "1-20") ;;
    fda) flow="fda(n=3, label=x0)"; data=$CLS; cols=(--columns "1-20") ;;
    pca) flow="pca(n=5)" ;;
    whitening) flow="whitening(n=5)" ;;
    ridge) flow="ridge(alpha=[0.1,1], target=$y)" ;;
    linreg) flow="linreg(target=$y)" ;;
    linreg_qr) flow="linreg(target=$y, method=qr)" ;;
    sfa2) flow="sfa2(n=5)"; cols=(--columns "0-7") ;;
    sfa) flow="sfa(n=5)" ;;
    svd) flow="svd(k=5)" ;;
    hist) flow="hist(bins=20)" ;;
    kmeans) flow="kmeans(k=8, seed=1, max_iter=20, tol=0)" ;;
    *) flow=$node ;;
  esac
  best_old=""; best_new=""
  for _ in $(seq "$REPEAT"); do
    o=$(wall "$OLD" "$data" "$flow" "${cols[@]}"); n=$(wall "$NEW" "$data" "$flow" "${cols[@]}")
    if [ -z "$best_old" ] || (( $(echo "$o < $best_old" | bc -l) )); then best_old=$o; fi
    if [ -z "$best_new" ] || (( $(echo "$n < $best_new" | bc -l) )); then best_new=$n; fi
  done
  ratio=$(echo "$best_new / $best_old" | bc -l)
  printf "%-11s %6s %10.3f %10.3f %7.3f\n" "$node" "$RANKS" "$best_old" "$best_new" "$ratio"
  if (( $(echo "$ratio > $MAX" | bc -l) )); then slow=1; fi
done
[ $slow = 0 ] || { echo "bench_gate: a node is more than $MAX x slower than $BASE" >&2; exit 1; }
echo "bench_gate: every node within $MAX x of $BASE"
