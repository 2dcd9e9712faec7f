#!/usr/bin/env bash
# The main job on the shipped example data, from a fresh machine:
# set up, build (release), train a flow over 4 MPI ranks, inspect the model, execute it, and
# draw what it learned (out/pca.svg) and the rows through it (out/pca_scatter.png).
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
target/release/flowmpi plot out/model.json -o out/pca.svg
mpirun -n 4 target/release/flowmpi plot --model out/model.json --data 'data/example/part{rank}.csv' \
  -o out/pca_scatter.png
mpirun -n 2 target/release/flowmpi stats --data data/example
