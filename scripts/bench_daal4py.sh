#!/usr/bin/env bash
# flowmpi.fit against daal4py's SPMD mode on the same rows in memory: PCA on the correlation
# matrix of N x D rows split over 1..4 ranks, each side the best of 3, run A B A B (the machine
# is noisy; the ratio is what counts). daal4py is Intel's and is launched by Intel MPI (its
# wheel links libmpi.so.12): it lives in a venv of its own, FLOWMPI_DAAL_VENV (made here from
# the package index: daal4py, scikit-learn < 1.6 as daal4py 2024.7 needs, impi_rt), and runs
# under that venv's mpiexec; flowmpi runs under the machine's mpirun, from .venv
# (bash scripts/python_setup.sh). Both one thread per rank unless DAAL_THREADS says otherwise.
#
#   bash scripts/bench_daal4py.sh [RANKS...]        # default: 1 2
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export OPENBLAS_NUM_THREADS=1
VENV=${FLOWMPI_VENV:-.venv}
DAAL=${FLOWMPI_DAAL_VENV:-/tmp/flowmpi-daal-venv}
N=${N:-2000000} D=${D:-32} THREADS=${DAAL_THREADS:-1}
if [ ! -x "$DAAL/bin/mpiexec" ]; then
  python3 -m venv "$DAAL"
  "$DAAL/bin/pip" install -q daal4py "scikit-learn<1.6" "numpy<2.2" packaging impi_rt
fi
ranks=("$@")
[ ${#ranks[@]} -gt 0 ] || ranks=(1 2)
printf '%-6s %-10s %-10s %-8s %s\n' ranks flowmpi_s daal4py_s ratio "eigenvalues (flowmpi | daal4py)"
for n in "${ranks[@]}"; do
  best_f='' best_d=''
  for pair in 1 2; do
    f=$(mpirun -n "$n" "$VENV/bin/python" scripts/bench_fit_side.py flowmpi --n "$N" --d "$D")
    d=$(PATH="$DAAL/bin:$PATH" I_MPI_FABRICS=shm "$DAAL/bin/mpiexec" -n "$n" "$DAAL/bin/python" scripts/bench_fit_side.py daal4py --n "$N" --d "$D" --threads "$THREADS")
    tf=$(awk '{print $3}' <<<"$f") td=$(awk '{print $3}' <<<"$d")
    if [ -z "$best_f" ] || awk "BEGIN{exit !($tf < $best_f)}"; then best_f=$tf; fev=$(cut -d' ' -f4- <<<"$f"); fi
    if [ -z "$best_d" ] || awk "BEGIN{exit !($td < $best_d)}"; then best_d=$td; dev=$(cut -d' ' -f4- <<<"$d"); fi
  done
  printf '%-6s %-10s %-10s %-8s %s\n' "$n" "$best_f" "$best_d" "$(awk "BEGIN{printf \"%.2f\", $best_f / $best_d}")" "$fev | $dev"
done
echo "ratio: flowmpi's time / daal4py's ($N x $D rows in memory; daal4py threads per rank: $THREADS)"
