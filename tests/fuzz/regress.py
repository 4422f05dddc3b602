"""Regression files: a shrunk failing program kept as a test.

A regression is a module in ``tests/fuzz/regressions/`` that defines

* ``f`` (and the helpers it calls): the program;
* ``ARGS``, ``TANGENTS``: the inputs and the tangent directions;
* ``ACTIVE``: the names of the parameters whose tangents are given
  (the activity pattern the failure needs); ``None`` means check_jvp's full
  list (every argument alone, then all together, through ``f.jvp``);
* ``XFAIL``: ``None`` once fwdjit is fixed, else ``"bug: ..."`` (the test is
  then ``xfail(strict=True)``, so it reports when the bug goes away).

``tests/test_fuzz.py`` runs each one with :func:`run_regression`.
"""
from __future__ import annotations

import os

import numpy as np

from .runner import Packed, load_module

REGRESSION_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regressions")


def fmt_value(v):
    if v is None:
        return "None"
    if isinstance(v, np.ndarray):
        return f"np.array({v.tolist()!r}, dtype=np.{v.dtype.name})"
    if isinstance(v, (bool, np.bool_)):
        return repr(bool(v))
    if isinstance(v, np.floating):
        return f"np.{type(v).__name__}({float(v)!r})"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (int, np.integer)):
        return repr(int(v))
    if isinstance(v, tuple):
        return "(" + "".join(fmt_value(x) + ", " for x in v) + ")"
    raise TypeError(type(v))


def render_regression(prog, outcome, *, title, xfail=None, note=""):
    """Source text of a regression module for the (shrunk) program ``prog``."""
    from fwdjit.testing import random_tangents
    tangents = prog.meta.get("tangents") or list(random_tangents(tuple(prog.args), seed=prog.seed))
    mask = outcome.mask if outcome is not None else None
    active = None if prog.meta.get("full") else tuple(mask or ())
    tans = [t if (active is None or n in active) else None for n, t in zip(prog.names, tangents)]
    doc = f'"""Fuzzer regression: {title}\n\nFound from seed {prog.seed}'
    if outcome is not None:
        doc += f" ({outcome.status}, {outcome.stage})"
    doc += ".\n"
    if note:
        doc += "\n" + note.strip() + "\n"
    doc += '"""\n'
    body = prog.source
    if not body.lstrip().startswith("import"):
        body = "import math\nimport numpy as np\n\n" + body
    lines = [doc + body.rstrip() + "\n\n",
             f"ARGS = ({''.join(fmt_value(a) + ', ' for a in prog.args)})",
             f"TANGENTS = ({''.join(fmt_value(t) + ', ' for t in tans)})",
             f"ACTIVE = {active!r}",
             f"XFAIL = {xfail!r}", ""]
    return "\n".join(lines)


def write_regression(prog, outcome, name, *, title, xfail=None, note="", directory=REGRESSION_DIR):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name + ".py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_regression(prog, outcome, title=title, xfail=xfail, note=note))
    return path


def list_regressions(directory=REGRESSION_DIR):
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.endswith(".py") and not n.startswith("_"))


def load_regression(path, workdir):
    with open(path, encoding="utf-8") as fh:
        src = fh.read()
    return load_module(src, workdir, stem="reg_" + os.path.basename(path)[:-3])


def run_regression(mod, fj=None):
    """Check a regression module's ``f`` with ``check_jvp`` (raises on mismatch)."""
    from fwdjit import fwdjit
    from fwdjit.testing import check_jvp
    fj = fj or fwdjit(mod.f, cache=False)
    args = tuple(mod.ARGS)
    # CHECK_DTYPE = False: the program's float32 result is float64 on purpose (Numba's rules)
    check_dtype = getattr(mod, "CHECK_DTYPE", True)
    with np.errstate(all="ignore"):
        if mod.ACTIVE is None:
            return check_jvp(fj, args, tuple(mod.TANGENTS), check_dtype=check_dtype)
        params = list(fj.params)
        tans = tuple(t if p in mod.ACTIVE else None for p, t in zip(params, mod.TANGENTS))
        return check_jvp(Packed(fj), (args,), (tans,), check_dtype=check_dtype)
