#!/usr/bin/env bash
# A wide model's file: train `covariance` on ROWS x COLS (default 2000 x 4096: three 4096 x 4096
# matrices, about a gigabyte of JSON) with this checkout's build and with BASE's (a git
# revision), alternating, REPEAT times each, then execute each model on 100 rows. Prints the
# best wall times, the model file sizes, execute's peak RSS, and their ratios; checks that the
# two builds' models give byte-identical execute output.
#
#   BASE=c03dd98 bash scripts/bench_wide_model.sh
#   BASE=c03dd98 COLS=2048 REPEAT=3 bash scripts/bench_wide_model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
set +u
BASE=${BASE:-HEAD}; ROWS=${ROWS:-2000}; COLS=${COLS:-4096}; REPEAT=${REPEAT:-2}
DIR=${BENCH_DIR:-/tmp/flowmpi-bench}/wide${ROWS}x$COLS
source scripts/ab_builds.sh
if [ ! -f "$DIR/small.npy" ]; then
  mkdir -p "$DIR"
  python3 - "$DIR" "$ROWS" "$COLS" <<'PYEOF'
import sys, numpy as np
d, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = np.random.default_rng(0)
np.save(f"{d}/x.npy", r.normal(size=(n, c)))
np.save(f"{d}/small.npy", r.normal(size=(100, c)))
PYEOF
fi

timed() { # out-file command... -> "seconds peak-kB" of one run
  local out=$1; shift
  /usr/bin/time -f "%e %M" -o "$out" "$@" >/dev/null 2>"$TMP/log" || { echo "bench_wide_model: FAILED: $*" >&2; cat "$TMP/log" >&2; exit 1; }
}
best() { sort -n | head -1; }
: > "$TMP/train_old"; : > "$TMP/train_new"; : > "$TMP/exec_old"; : > "$TMP/exec_new"
for _ in $(seq "$REPEAT"); do
  for v in old new; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    timed "$TMP/t" env OPENBLAS_NUM_THREADS=1 "$bin" -q train --data "$DIR/x.npy" --flow covariance --model "$TMP/$v.json"
    cut -d' ' -f1 "$TMP/t" >> "$TMP/train_$v"
    timed "$TMP/t" "$bin" -q execute --model "$TMP/$v.json" --data "$DIR/small.npy" --out "$TMP/$v.npy"
    cat "$TMP/t" >> "$TMP/exec_$v"
  done
done
cmp -s "$TMP/old.npy" "$TMP/new.npy" || { echo "bench_wide_model: the two models execute differently" >&2; exit 1; }
size_old=$(stat -c %s "$TMP/old.json"); size_new=$(stat -c %s "$TMP/new.json")
t_old=$(best < "$TMP/train_old"); t_new=$(best < "$TMP/train_new")
e_old=$(cut -d' ' -f1 "$TMP/exec_old" | best); e_new=$(cut -d' ' -f1 "$TMP/exec_new" | best)
m_old=$(cut -d' ' -f2 "$TMP/exec_old" | best); m_new=$(cut -d' ' -f2 "$TMP/exec_new" | best)
printf "%-24s %12s %12s %7s\n" "$ROWS x $COLS covariance" "base $BASE" "new" "ratio"
printf "%-24s %12.2f %12.2f %7.2f\n" "train + write, s" "$t_old" "$t_new" "$(echo "$t_new / $t_old" | bc -l)"
printf "%-24s %12.1f %12.1f %7.2f\n" "model file, MB" "$(echo "$size_old / 1000000" | bc -l)" "$(echo "$size_new / 1000000" | bc -l)" "$(echo "$size_new / $size_old" | bc -l)"
printf "%-24s %12.2f %12.2f %7.2f\n" "execute 100 rows, s" "$e_old" "$e_new" "$(echo "$e_new / $e_old" | bc -l)"
printf "%-24s %12.0f %12.0f %7.2f\n" "execute peak RSS, MB" "$(echo "$m_old / 1024" | bc -l)" "$(echo "$m_new / 1024" | bc -l)" "$(echo "$m_new / $m_old" | bc -l)"
echo "execute output: byte-identical"
