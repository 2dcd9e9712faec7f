#!/usr/bin/env bash
# 1. Task-farm makespan: 200 sleep tasks with heavy-tailed (Pareto) durations, `flowmpi map` on
#    2 and 4 ranks, each schedule, against the lower bound max(total/ranks, longest).
# 2. Per-item overhead of `par::parallelize` on 100,000 tiny items, 1, 2 and 4 ranks, beside a
#    serial loop timed in the same run (examples/par_overhead.rs).
# 3. Per-task cost: 20,000 `true` tasks with `flowmpi map` on 1 and 2 ranks beside `xargs -P1`
#    and `-P2` running the same tasks, in pairs in the same run (the floor is fork+exec of `true`).
# Run after `source scripts/setup.sh && cargo build --release --examples`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/flowmpi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/tasks.txt" <<'PY'
import random, sys
random.seed(7)
d = [min(0.02 * random.paretovariate(1.5), 1.5) for _ in range(200)]
open(sys.argv[1], "w").write("".join(f"{x:.3f}\n" for x in d))
print(f"200 tasks: total {sum(d):.2f} s, longest {max(d):.2f} s")
PY
total=$(awk '{s+=$1} END {print s}' "$dir/tasks.txt")
longest=$(sort -g "$dir/tasks.txt" | tail -1)
for n in 2 4; do
  bound=$(awk -v t="$total" -v l="$longest" -v n="$n" 'BEGIN {b=t/n; if (l>b) b=l; print b}')
  for schedule in dynamic guided static; do
    secs=$(FLOWMPI_THREADS=1 mpirun --oversubscribe -n "$n" "$BIN" map --tasks "$dir/tasks.txt" --schedule "$schedule" -- sleep {} 2>&1 >/dev/null \
      | sed -n 's/.* failed, in \([0-9.]*\) s/\1/p')
    awk -v n="$n" -v s="$schedule" -v m="$secs" -v b="$bound" 'BEGIN {printf "%d ranks %-8s makespan %6.2f s  lower bound %6.2f s  ratio %.3f\n", n, s, m, b, m/b}'
  done
done
for n in 1 2 4; do
  FLOWMPI_THREADS=1 mpirun --oversubscribe -n "$n" target/release/examples/par_overhead 100000
done
seq 20000 > "$dir/true.txt"
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}'; }
for n in 1 2; do
  for pair in 1 2; do
    m=$(secs env FLOWMPI_THREADS=1 mpirun --oversubscribe -n "$n" "$BIN" map --tasks "$dir/true.txt" -- true)
    x=$(secs xargs -P"$n" -n1 true < "$dir/true.txt")
    awk -v n="$n" -v m="$m" -v x="$x" 'BEGIN {printf "20000 true tasks, %d ranks: map %6.2f s (%.3f ms/task)  xargs -P%d %6.2f s  ratio %.2f\n", n, m, 1000*m/20000, n, x, m/x}'
  done
done
