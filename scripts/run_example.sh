#!/usr/bin/env bash
# The main job on the shipped example data, from a fresh machine:
# set up, build (release), train a flow over 4 MPI ranks, inspect the model, execute it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --quiet
mkdir -p out
mpirun -n 4 target/release/flowmpi train --data 'data/example/part{rank}.csv' \
  --flow 'moments | covariance | pca(n=3)' --model out/model.json
target/release/flowmpi inspect out/model.json
mpirun -n 4 target/release/flowmpi execute --model out/model.json \
  --data 'data/example/part{rank}.csv' --out 'out/pca{rank}.csv'
mpirun -n 2 target/release/flowmpi stats --data data/example
