"""The CUDA target on Numba's CUDA simulator, as part of the default test command.

``tests/test_cuda.py`` needs ``NUMBA_ENABLE_CUDASIM=1`` in the environment
before Numba is imported, so it cannot run inside this pytest process; this
test runs the whole file in a child process with the simulator on, and
fails with the child's report if any of its tests fails.  When the variable
is already set (``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda.py``)
test_cuda.py runs directly and this test skips.
"""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="the simulator is on in this process: tests/test_cuda.py runs directly")
def test_cuda_target_on_the_simulator(tmp_path):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", FWDJIT_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                           os.path.join(HERE, "test_cuda.py")],
                          cwd=os.path.dirname(HERE), env=env, capture_output=True, text=True, timeout=900)
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 50, tail      # the simulator really ran the CUDA tests
    assert "failed" not in proc.stdout.splitlines()[-1], tail
