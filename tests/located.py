"""Helpers shared by the located-error tests (tests/test_compile_errors.py, tests/test_cuda_errors.py)
and the CUDA compiler tests (tests/test_cuda_ptx.py).

* :func:`marker_line` finds the source line a test marks with ``# <- key``.
* :func:`assert_located_message` checks the shape of a located error's message: the
  user's file:line, the source line, a caret, the named words, a few lines, no Numba
  type words in the first line.
* :func:`ptx_ok` probes for numba-cuda's real compiler down to PTX (no GPU needed), and
  :data:`CC` is the compute capability the tests compile for.
"""
import os
import re

CC = (9, 0)


def marker_line(path, key):
    """The 1-based number of the one line of ``path`` ending with ``# <- key``."""
    with open(path) as fh:
        hits = [i for i, line in enumerate(fh, 1) if re.search(rf"# <- {re.escape(key)}$", line.rstrip())]
    assert len(hits) == 1, (key, hits)
    return hits[0]


def assert_located_message(exc, path, key, *named, max_lines=10, numba_words=("array(float64",)):
    """``exc``'s message is located at ``path``'s line marked ``key`` and names ``named``; returns the message.

    It starts with ``path:line:``, shows the source line then a caret, contains every
    ``named`` string, has at most ``max_lines`` lines, and its first line has none of
    ``numba_words`` (Numba's type names, where NumPy's words are expected).
    """
    msg = str(exc)
    line = marker_line(path, key)
    assert msg.startswith(f"{path}:{line}:"), msg
    with open(path) as fh:
        src = fh.read().splitlines()[line - 1].strip()
    lines = msg.splitlines()
    assert lines[1].strip() == src and lines[2].strip() == "^", msg
    for n in named:
        assert n in msg, (n, msg)
    assert len(lines) <= max_lines, msg
    for word in numba_words:
        assert word not in lines[0], msg
    return msg


def ptx_ok(cc=CC):
    """``(True, "")`` when numba-cuda's real compiler compiles to PTX for ``cc`` here (no GPU needed), else
    ``(False, why)``: under the simulator, without numba.cuda, or without NVVM."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False, "the CUDA simulator is on (these tests use the real compiler)"
    try:
        from numba import cuda
        from numba import float64
    except Exception as exc:
        return False, f"numba.cuda cannot be imported ({exc})"
    try:
        from fwdjit.targets.cuda import simulator_enabled
        if simulator_enabled():
            return False, "the CUDA simulator is on"

        def probe(x):
            return x * 2.0
        cuda.compile_ptx(probe, (float64,), device=True, cc=cc)
    except Exception as exc:
        return False, f"numba-cuda cannot compile PTX here (NVVM missing?): {str(exc).splitlines()[0][:200]}"
    return True, ""
