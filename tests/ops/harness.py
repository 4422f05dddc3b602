"""The per-operation test matrix: one table row per supported function and form.

A row is one line (:func:`row`): the README name, an expression (or a body) in the
arguments ``a, b, c``, each argument's domain, and the shapes it is checked at::

    row("elementwise", "log", "np.log(a)", "pos")
    row("reductions", "sum", "np.sum(a, axis=1)", shapes=ND2, form="axis=")

Every row expands to cases (one per shape and dtype).  A case writes its function
as real source into one generated module (fwdjit reads source), compiles it with
``fwdjit``, checks the compiled primal against NumPy (value, shape, dtype) and
``fwdjit.testing.check_jvp`` for every differentiable argument, alone and together
(8th-order central differences).  The first shape of each row in float64 (and
float32 for a representative subset) is the quick tier; the other shapes and dtypes are
``@pytest.mark.exhaustive``.

README's table of supported functions is generated from these rows
(``python -m tests.ops.harness --table``), so it lists what the matrix passes:
a row that fails is marked ``xfail`` with its reason and left out of the table.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

import numpy as np

from fwdjit.testing.values import dtype_of

# ------------------------------------------------------------- shapes ------
S = None            # a scalar (a Python float for float64, np.float32 for float32)
ALL = ((5,), S, (3, 4), (2, 3, 4))    # the first shape of a row is its quick-tier case
ND1 = ((5,), (3, 4), (2, 3, 4))
ND2 = ((3, 4), (2, 3, 4))
ND3 = ((2, 3, 4),)
SQ = ((3, 3),)

GROUPS = ("elementwise", "math", "reductions", "linear algebra", "creation", "shape", "methods")


class Row:
    """One function in one form, checked at several shapes."""

    def __init__(self, group, name, expr, doms, shapes, form, xfail, xfail32, readme, quick, quick_f32):
        self.group, self.name, self.expr, self.doms = group, name, expr, doms
        self.shapes, self.form, self.xfail, self.xfail32, self.readme = shapes, form, xfail, xfail32, readme
        self.quick, self.quick_f32 = quick, quick_f32


ROWS: list = []


def row(group, name, expr, *doms, shapes=ALL, form=None, xfail=None, xfail32=None, readme=True, quick=True,
        f32=False):
    """Add a row.  ``doms``: one domain per argument (default one ``"real"`` argument);
    ``shapes``: a shape per case (one argument) or a tuple of shapes per case (several);
    ``form``: the README note of this form (``"axis="``); ``xfail``: why it fails (left
    out of README); ``xfail32``: why float32 fails (README says "float64 only");
    ``readme=False``: tested but not a README entry (a variant of a row);
    ``quick=False``: the whole row in the exhaustive tier; ``f32=True``: the first shape in float32
    in the quick tier too (else float32 is exhaustive).  The quick tier is a representative subset
    (every new rule, one of each kind of rule), since each case compiles its own function."""
    doms = doms or ("real",)
    shapes = tuple(s if len(doms) > 1 else (s,) for s in shapes)
    ROWS.append(Row(group, name, expr, doms, shapes, form, xfail, xfail32, readme, quick, f32))


# ------------------------------------------------------------ domains ------
def _draw(dom, shape, rng):
    """Values inside ``dom``, at least 0.2 away from kinks and domain edges
    (the finite-difference stencil reaches ~5e-3)."""
    size = 1 if shape is None else int(np.prod(shape, dtype=int))
    if dom == "real":
        v = rng.uniform(-2.0, 2.0, size)
    elif dom == "pos":
        v = rng.uniform(0.5, 2.0, size)
    elif dom == "unit":
        v = rng.uniform(-0.8, 0.8, size)
    elif dom == "gt1":
        v = rng.uniform(1.5, 3.0, size)
    elif dom == "away":            # |x| >= 0.3: abs, sign, sinc's branch
        v = rng.uniform(0.3, 2.0, size) * rng.choice((-1.0, 1.0), size)
    elif dom == "frac":            # 0.2 away from integers: floor, ceil, mod
        v = rng.integers(-3, 3, size) + rng.uniform(0.2, 0.8, size)
    elif dom in ("latA", "latB"):  # two lattices 0.25 apart: maximum(a, b) never near a tie
        v = 0.5 * rng.integers(-4, 4, size) + (0.1 if dom == "latA" else 0.35)
    elif dom == "lo":
        v = rng.choice((-1.15, -0.65), size)
    elif dom == "hi":
        v = rng.choice((0.35, 0.85), size)
    elif dom == "distinct":        # no ties (max, sort, partition), gaps >= 0.1
        v = rng.permutation(np.linspace(-2.0, 2.0, size)) + rng.uniform(-0.02, 0.02, size)
    elif dom == "dabs":            # distinct magnitudes >= 0.3, random signs (max/min of abs: inf-norms)
        v = (rng.permutation(np.linspace(0.3, 2.0, size)) + rng.uniform(-0.01, 0.01, size)) \
            * rng.choice((-1.0, 1.0), size)
    elif dom == "mat":             # well-conditioned square matrices (det, solve, inv)
        n = shape[-1]
        v = (3.0 * np.eye(n) + rng.uniform(-0.5, 0.5, shape)).ravel()
    elif dom == "sym":             # symmetric, eigenvalues about 2 apart (eigh, eigvalsh)
        n = shape[-1]
        b = rng.uniform(-0.25, 0.25, shape)
        v = (b + np.swapaxes(b, -1, -2) + np.diag(2.0 * np.arange(1, n + 1))).ravel()
    elif dom == "sep":             # singular values about 1 apart (svd)
        k = min(shape[-2:])
        v = rng.uniform(-0.1, 0.1, shape)
        for i in range(k):
            v[..., i, i] += k - i
        v = v.ravel()
    else:
        raise ValueError(f"unknown domain {dom!r}")
    return v if shape is None else v.reshape(shape)


def inputs(r, shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for dom, shape in zip(r.doms, shapes):
        v = _draw(dom, shape, rng)
        if shape is None:
            out.append(float(v[0]) if dtype == np.float64 else np.float32(v[0]))
        else:
            out.append(v.astype(dtype))
    return tuple(out)


# ------------------------------------------------- generated functions ------
def _func_name(i):
    return f"op_{i}"


def _source():
    lines = ["import math", "", "import numpy as np", ""]
    for i, r in enumerate(ROWS):
        params = ", ".join("abc"[:len(r.doms)])
        body = r.expr if "\n" in r.expr or r.expr.startswith("return") else "return " + r.expr
        body = "\n".join("    " + ln.strip() for ln in body.split("\n"))
        lines += ["", f"def {_func_name(i)}({params}):", body, ""]
    return "\n".join(lines)


_MODULES = {}
ROW_MODULES = ("test_elementwise", "test_reductions", "test_linalg", "test_shapes")


def module():
    """The generated module holding one function per row (written once per process and set of rows)."""
    mod = _MODULES.get(len(ROWS))
    if mod is None:
        name = f"fwdjit_ops_cases_{len(ROWS)}"
        path = os.path.join(tempfile.mkdtemp(prefix="fwdjit-ops-"), name + ".py")
        with open(path, "w") as fh:
            fh.write(_source())
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        _MODULES[len(ROWS)] = mod
    return mod


def function(r):
    return getattr(module(), _func_name(ROWS.index(r)))


# -------------------------------------------------------------- checks ------
def _shape_id(shapes):
    return "+".join("s" if s is None else "x".join(map(str, s)) or "0d" for s in shapes)


def row_id(r):
    return f"{r.name}{'[' + r.form + ']' if r.form else ''}"


def params(groups):
    """pytest params ``(row, shapes, dtype)`` of the rows of ``groups``."""
    import pytest
    out = []
    for r in ROWS:
        if r.group not in groups:
            continue
        for k, shapes in enumerate(r.shapes):
            for dtype, tag in ((np.float64, "f64"), (np.float32, "f32")):
                quick = r.quick and k == 0 and (tag == "f64" or r.quick_f32)
                marks = [pytest.mark.xdist_group("ops-" + row_id(r))]
                if not quick:
                    marks.append(pytest.mark.exhaustive)
                if r.xfail or (r.xfail32 and tag == "f32"):
                    marks.append(pytest.mark.xfail(strict=True, reason=r.xfail or r.xfail32))
                out.append(pytest.param(r, shapes, dtype, marks=marks,
                                        id=f"{row_id(r)}-{_shape_id(shapes)}-{tag}"))
    return out


_COMPILED = {}


def compiled(r):
    from fwdjit import fwdjit
    f = _COMPILED.get(id(r))
    if f is None:
        f = _COMPILED[id(r)] = fwdjit(function(r))
    return f


def _copy(v):
    return tuple(x.copy() if isinstance(x, np.ndarray) else x for x in v)


def _leaves(v):
    if isinstance(v, (tuple, list)):
        return [x for e in v for x in _leaves(e)]
    return [v]


def check_primal(r, args, dtype):
    """The compiled primal equals NumPy: structure, value, shape and dtype."""
    want = function(r)(*_copy(args))
    got = compiled(r)(*_copy(args))
    gl, wl = _leaves(got), _leaves(want)
    assert len(gl) == len(wl), f"{row_id(r)}: {len(gl)} outputs, NumPy gives {len(wl)}"
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for g, w in zip(gl, wl):
        assert np.shape(g) == np.shape(w), f"{row_id(r)}: shape {np.shape(g)}, NumPy {np.shape(w)}"
        assert dtype_of(g) == dtype_of(w), f"{row_id(r)}: dtype {dtype_of(g)}, NumPy {dtype_of(w)}"
        w64 = np.asarray(w, np.float64)
        scale = float(np.max(np.abs(w64), initial=0.0))
        np.testing.assert_allclose(np.asarray(g, np.float64), w64, rtol=rtol, atol=rtol * scale + 1e-300,
                                   err_msg=f"{row_id(r)} primal")


def run_case(r, shapes, dtype):
    from fwdjit.testing import check_jvp
    args = inputs(r, shapes, dtype)
    check_primal(r, args, dtype)
    check_jvp(compiled(r), args, inactive="zeros")


# -------------------------------------------------------------- README ------
HANDWRITTEN = {
    "values": "Python float/int/bool, NumPy float32/float64 scalars and arrays of any ndim, tuples of these",
    "arithmetic": "`+ - * / // % **` (power in base **and** exponent), unary `-`, comparisons, `and/or/not` "
                  "in conditions, `a if c else b`, augmented assignment, tuple packing/unpacking, `a = b = e`",
    "indexing": "reads and writes with ints, slices, negative indices, `a[i] = e`, `a[i, j] += e`; views stay "
                "views (writes through a view reach its base, and its tangent's base)",
    "control flow": "`for` over `range(...)`, over arrays (`for row in A`), `enumerate(a)`, `zip(a, b)`; "
                    "`while`, `break`, `continue`, `if/elif/else`, early `return`",
    "calls": "other user functions (same module or imported, plain or `@numba.njit`): transformed recursively, "
             "including in-place writes to their array arguments, with positional or keyword arguments "
             "(`inner(x, scale=3.0)`); black boxes via `fwdjit.defjvp`, NumPy "
             "functions included (`fwdjit.defjvp(np.cumprod, partial)`)",
    "lists": "list literals that are read, indexed, looped over or turned into arrays: `np.array([a, b, c])`, "
             "`np.stack([x, y])`, `axes=[1, 0]`, `b = [1.0, a * a, 2.0]` (compiled as tuples; as arrays where "
             "indexed by a variable, `b[i]`), fancy indices `x[[0, 2]]` (an int array); reductions of lists "
             "(`np.mean([a, b])`, `np.linalg.norm((x, y))`: read as arrays), `np.array` of lists of equal-shaped "
             "arrays (their stack), the builtin `sum([x, y])` (additions); appending to or writing "
             "into a list is refused, located",
    "strings": "as call arguments: dtype names (`x.astype(\"float32\")`, `dtype=\"float64\"` become `np.float32`, "
               "`np.float64`), einsum subscripts and other string options",
    "defaults": "constant default parameter values (`def f(x, n=3, scale=0.5, shape=(2,))`), bound at decoration: "
                "callers, `f.jvp`, `fwdjit.jvp`, batched `jvp`, `forward_grad` and other user functions may omit "
                "them (their tangents are `None`); function defaults (`def f(x, act=np.tanh)`), bound at "
                "decoration too (the compiled code has no such parameter: passing one is refused, located); "
                "any other default (an array, a list) is refused, located",
}
ORDER = ("values", "arithmetic", "elementwise", "math", "reductions", "linear algebra", "creation", "shape",
         "methods", "indexing", "control flow", "calls", "lists", "strings", "defaults")


def readme_entries(group):
    """``[(name, [forms])]`` of the passing rows of ``group``, in table order."""
    names, failing = {}, set()
    for r in ROWS:
        if r.group != group or not r.readme:
            continue
        if r.xfail:
            if not r.form:             # the plain form fails: the name is left out
                failing.add(r.name)
            continue                   # a form that fails is left out
        forms = names.setdefault(r.name, [])
        for note in ([r.form] if r.form else []) + (["float64 only"] if r.xfail32 else []):
            if note not in forms:
                forms.append(note)
    return [(n, f) for n, f in names.items() if n not in failing]


def table():
    """README's table of the supported subset (function rows generated from the matrix)."""
    for m in ROW_MODULES:           # the test modules hold the rows
        importlib.import_module(f"{__package__}.{m}")
    lines = ["| | |", "|---|---|"]
    for g in ORDER:
        if g in HANDWRITTEN:
            text = HANDWRITTEN[g]
        else:
            text = " ".join(f"`{n}`" + (f" ({', '.join('`' + f + '`' for f in forms)})" if forms else "")
                            for n, forms in readme_entries(g))
        lines.append(f"| {g} | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        from tests.ops import harness   # the module the row tables register with (not __main__)
        print(harness.table())
    else:
        print("usage: python -m tests.ops.harness --table", file=sys.stderr)
        sys.exit(2)
