#!/usr/bin/env bash
# Install flowmpi's Python package into a virtual environment (default .venv at the top of the
# checkout; FLOWMPI_VENV names another), built against the MPI on this machine by maturin:
#   bash scripts/python_setup.sh && .venv/bin/python -c 'import flowmpi'
# Missing pieces are installed when possible: Debian's python3-venv and python3-dev with apt
# as root; maturin, numpy, pytest, scikit-learn (the tests' reference) and mpi4py (built against
# this MPI) with pip into the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the extension builds against (MPI, OpenBLAS, libclang for rsmpi's bindings): as for the
# flowmpi command.
source scripts/setup.sh
VENV=${FLOWMPI_VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "python_setup: installing python3-venv python3-dev" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq python3-venv python3-dev python3-pip >/dev/null
      rm -rf "$VENV"
      "$PY" -m venv "$VENV"
    else
      echo "python_setup: '$PY -m venv' failed; install Python's venv module (Debian: python3-venv)" >&2
      exit 1
    fi
  fi
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q "maturin>=1.7,<2" numpy pytest scikit-learn
# mpi4py is built from source against this machine's MPI (mpicc), never a bundled libmpi.
"$VENV/bin/python" -m pip install -q --no-binary mpi4py mpi4py
# The package itself: maturin builds the extension in release mode against the MPI found by
# rsmpi (the same as the flowmpi command's), reusing cargo's target directory.
PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps ./python
"$VENV/bin/python" -c 'import flowmpi, sys; print("python_setup: flowmpi", flowmpi.__file__, file=sys.stderr)'
