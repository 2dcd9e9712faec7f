"""Ctrl-C during a long flowmpi call raises KeyboardInterrupt, on every rank even when only one
rank gets the signal, and flowmpi works afterwards. Rank 0 runs each case as a job of its own
(interrupt_child.py): a single process, and two ranks under mpirun with SIGINT sent to rank 1
alone (mpirun itself, on Ctrl-C, ends every rank)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from test_models import SINGLETON

CHILD = os.path.join(os.path.dirname(__file__), "interrupt_child.py")


def interrupt(what, ranks):
    """Start the job, wait until its work is under way, SIGINT the last rank; its output."""
    folder = tempfile.mkdtemp(prefix="flowmpi-ctrlc-")
    try:
        cmd = [sys.executable, CHILD, what, folder]
        if ranks > 1:
            cmd = ["mpirun", "-n", str(ranks)] + cmd
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=SINGLETON)
        first = p.stdout.readline()
        assert first.strip() == "started", first + p.stderr.read()
        pid = os.path.join(folder, f"pid.{ranks - 1}")
        for _ in range(100):
            if os.path.exists(pid) and open(pid).read():
                break
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(int(open(pid).read()), signal.SIGINT)
        try:
            out, err = p.communicate(timeout=120)  # a hang guard, not a timing claim
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail(f"{what} on {ranks} ranks did not end after Ctrl-C")
        assert p.returncode == 0, err
        return first + out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("what", ["map", "kmeans"])
@pytest.mark.parametrize("ranks", [1, 2])
def test_ctrl_c_raises_keyboard_interrupt_on_every_rank(ctx, what, ranks):
    if ctx.size > 1:
        pytest.skip("the jobs are the same whatever this suite's ranks: run from the one-rank suite")
    out = interrupt(what, ranks)
    for r in range(ranks):
        assert f"rank {r}: KeyboardInterrupt: " in out, out
        assert f"rank {r}: works again" in out, out
    assert "finished" not in out, out
    assert "interrupted (Ctrl-C)" in out, out
