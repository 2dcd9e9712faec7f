#!/usr/bin/env bash
# The Python package's tests: install it (scripts/python_setup.sh), check its Rust code (rustfmt,
# clippy), then pytest under mpirun -n 1..4, every rank running the suite; a scratch directory
# every rank sees is FLOWMPI_TEST_DIR; then the examples in examples/python under mpirun -n 1, 2, 4.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export OPENBLAS_NUM_THREADS=1
VENV=${FLOWMPI_VENV:-.venv}
bash scripts/python_setup.sh
cargo clippy --release -p flowmpi-python -- -D warnings
cargo build --release --bin flowmpi
export FLOWMPI_BIN=$PWD/target/release/flowmpi
for n in 1 2 3 4; do
  echo "== pytest python/tests under mpirun -n $n"
  FLOWMPI_TEST_DIR=$(mktemp -d)
  export FLOWMPI_TEST_DIR
  timeout -s KILL 300 mpirun -n "$n" "$VENV/bin/python" -m pytest -q -p no:cacheprovider python/tests
  rm -rf "$FLOWMPI_TEST_DIR"
done
for n in 1 2 4; do
  for example in examples/python/*.py; do
    echo "== $example under mpirun -n $n"
    timeout -s KILL 300 mpirun -n "$n" "$VENV/bin/python" "$example"
  done
done
