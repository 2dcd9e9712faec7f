#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up, build, unit tests (including flows over
# 1..8 simulated ranks), real `mpirun -n 1..4` runs of the binary against numpy references,
# bad-input runs (every one under a timeout), the library example under mpirun -n 1..4, and
# the Python package's tests under mpirun -n 1..4, and flowmpi under a real one-node Slurm and
# across three network-namespace hosts (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export OPENBLAS_NUM_THREADS=1
# The house habits first (they fail fast): one format (rustfmt.toml) and no clippy warning.
cargo fmt --all --check
cargo clippy --release --all-targets -- -D warnings
# The math without an MPI toolchain (the `mpi` feature off): it must build and pass alone.
cargo test --release --no-default-features --lib
cargo build --release --all-targets
# Under every BLAS kernel family this CPU can run: OpenBLAS picks other kernels (so other
# round-off) on AVX-512 CPUs than on AVX2 ones, and a tolerance or a bit-for-bit claim that
# holds under one only is a defect the other machines find. The first family runs every test;
# the others the tests that compare computed numbers (errors, faults and the task farm do not
# depend on the kernels). Two test threads: the mpirun tests start up to 4 ranks each on a
# 2-core machine.
families=""
grep -qw avx2 /proc/cpuinfo 2>/dev/null && families="Haswell"
grep -qw avx512f /proc/cpuinfo 2>/dev/null && families="$families SkylakeX"
numeric_tests="--lib --test library_jobs --test model_v1 --test mpirun_cache --test mpirun_compressed --test mpirun_hdf5 --test mpirun_mdp --test mpirun_parquet --test mpirun_reproducible --test mpirun_scale --test mpirun_supervised --test mpirun_train"
first=1
for family in ${families:-default}; do
  kernels=()
  [ "$family" = default ] || kernels=(env "OPENBLAS_CORETYPE=$family")
  if [ "$first" = 1 ]; then
    echo "== cargo test, every test, OpenBLAS kernels: $family"
    "${kernels[@]}" cargo test --release -- --test-threads=2
    first=0
  else
    echo "== cargo test, the tests that compare numbers, OpenBLAS kernels: $family"
    # shellcheck disable=SC2086
    "${kernels[@]}" cargo test --release $numeric_tests -- --test-threads=2
  fi
done
for n in 1 2 3 4; do
  echo "== examples/library.rs under mpirun -n $n"
  timeout -s KILL 120 mpirun -n "$n" target/release/examples/library
done
for n in 1 2 4; do
  echo "== examples/mdp_flow.rs under mpirun -n $n"
  timeout -s KILL 120 mpirun -n "$n" target/release/examples/mdp_flow
done
for n in 1 2 3 4; do
  echo "== examples/parallel_map.rs under mpirun -n $n"
  timeout -s KILL 120 mpirun -n "$n" target/release/examples/parallel_map
  # Tiny pieces: the gather and all-to-all rounds under the 32-bit count limit.
  FLOWMPI_COMM_PIECE=100 timeout -s KILL 120 mpirun -n "$n" target/release/examples/parallel_map
done
for n in 1 2 3 4; do
  echo "== examples/custom_node.rs under mpirun -n $n, run from / (it finds its data itself)"
  (cd / && timeout -s KILL 120 mpirun -n "$n" "$OLDPWD/target/release/examples/custom_node")
done
for n in 1 2 3 4; do
  echo "== examples/borrowed_mpi.rs and split_communicator.rs (MpiComm from a program's communicators) under mpirun -n $n"
  timeout -s KILL 120 mpirun -n "$n" target/release/examples/borrowed_mpi
  timeout -s KILL 120 mpirun -n "$n" target/release/examples/split_communicator
done
echo "== the Python package (pip install ./python into .venv) under mpirun -n 1..4"
timeout -s KILL 1200 bash scripts/test_python.sh
echo "== a real one-node Slurm: sbatch, srun, a time limit and --resume"
timeout -s KILL 600 bash scripts/test_slurm.sh
echo "== three hosts of network namespaces over TCP, and a host losing its link"
timeout -s KILL 300 bash scripts/test_multihost.sh
echo "all tests passed"
