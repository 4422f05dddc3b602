"""The public API: decorator, jvp, tangent_function, defjvp, errors, CLI, cache."""
import math
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import fwdjit as fj_pkg
from fwdjit import FwdjitError, TangentError, fwdjit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def central(f, args, tangents, h=1e-4):
    """4th-order central difference of f along tangents (float64)."""
    def at(s):
        return f(*[a if t is None else a + s * t for a, t in zip(args, tangents)])
    def comb(a1, a2, a3, a4):
        return (-a1 + 8 * a2 - 8 * a3 + a4) / (12 * h)
    vals = [at(2 * h), at(h), at(-h), at(-2 * h)]
    if isinstance(vals[0], tuple):
        return tuple(comb(*[np.asarray(v[i]) for v in vals]) for i in range(len(vals[0])))
    return comb(*[np.asarray(v) for v in vals])


def model(x, W, n):
    h = np.tanh(x @ W)
    s = 0.0
    for i in range(n):
        s += h[0, i] * h[1, i]
    return s, np.sum(h * h) / n


def test_decorator_forms_and_primal():
    f = fwdjit(model)
    g = fwdjit(fastmath=False, cache=False)(model)
    rng = np.random.default_rng(1)
    x, W = rng.random((2, 3)), rng.random((3, 4))
    assert np.allclose(f(x, W, 3), model(x, W, 3), rtol=1e-14)
    assert np.allclose(g(x, W, 3), model(x, W, 3), rtol=1e-14)
    assert f.__name__ == "model" and f.py_func is model


@pytest.mark.parametrize("which", [0, 1, "both"])
def test_jvp_tuple_output_every_argument(which):
    f = fwdjit(model)
    rng = np.random.default_rng(2)
    x, W = rng.random((2, 3)), rng.random((3, 4))
    dx = rng.standard_normal(x.shape) if which in (0, "both") else None
    dW = rng.standard_normal(W.shape) if which in (1, "both") else None
    (s, m), (ds, dm) = f.jvp((x, W, 3), (dx, dW, None))
    ref = central(model, (x, W, 3), (dx, dW, None))
    assert np.allclose([ds, dm], ref, rtol=1e-8, atol=1e-10)
    assert np.allclose((s, m), model(x, W, 3), rtol=1e-14)


def test_jvp_of_plain_function_and_lists():
    def g(x):
        return np.sin(x) * x
    x = np.linspace(0.1, 1.0, 5)
    y, dy = fwdjit.jvp(g, (x,), (np.ones(5),))
    assert np.allclose(dy, np.cos(x) * x + np.sin(x), rtol=1e-14)
    y2, dy2 = fwdjit.jvp(g, [x], [np.ones(5)])          # lists are accepted too
    assert np.array_equal(dy, dy2)


def test_tangent_function_called_from_njit():
    f = fwdjit(model)
    jf = f.tangent_function((False, True, False))
    rng = np.random.default_rng(3)
    x, W, dW = rng.random((2, 3)), rng.random((3, 4)), rng.random((3, 4))

    @numba.njit
    def loop(x, W, dW):
        acc = 0.0
        for k in range(5):
            out, dout = jf(x, W * (1.0 + 0.01 * k), 3, dW)
            acc += dout[0]
        return acc
    expected = sum(f.jvp((x, W * (1.0 + 0.01 * k), 3), (None, dW, None))[1][0] for k in range(5))
    assert np.isclose(loop(x, W, dW), expected, rtol=1e-13)


def layer(x, W, b):
    return np.sum(np.tanh(x @ W + b) * 0.5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_decorated_function_is_callable_from_njit(dtype):
    f = fwdjit(layer)
    rng = np.random.default_rng(7)
    x, W, b = rng.random((2, 3)).astype(dtype), rng.random((3, 4)).astype(dtype), dtype(0.25)
    dx, dW = rng.random((2, 3)).astype(dtype), rng.random((3, 4)).astype(dtype)

    @numba.njit
    def primal(x, W, b):
        return f(x, W, b)                                   # the decorated object itself

    @numba.njit
    def derivative(x, W, b, dx, dW):
        y1, d1 = f.jvp((x, W, b), (dx, None, None))         # same call as from Python
        y2, d2 = f.jvp((x, W, b), (dx, dW, None))           # another activity pattern, same function
        return y1, d1, d2

    @numba.njit
    def passed(g, x, W, b):
        return g(x, W, b)                                   # as an argument, like a dispatcher

    y = primal(x, W, b)
    assert np.isclose(y, f(x, W, b), rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert primal.nopython_signatures[0].return_type == numba.from_dtype(np.dtype(dtype))   # float32 stays
    y1, d1, d2 = derivative(x, W, b, dx, dW)
    ry, rd1 = f.jvp((x, W, b), (dx, None, None))
    _, rd2 = f.jvp((x, W, b), (dx, dW, None))
    assert np.isclose(y1, ry, rtol=1e-6) and np.isclose(d1, rd1, rtol=1e-6) and np.isclose(d2, rd2, rtol=1e-6)
    assert derivative.nopython_signatures[0].return_type.types[1] == numba.from_dtype(np.dtype(dtype))
    x64 = (x.astype(np.float64), W.astype(np.float64), float(b))
    ref = central(layer, x64, (dx.astype(np.float64), None, None))
    assert np.isclose(d1, ref, rtol=1e-4 if dtype == np.float32 else 1e-9)
    assert np.isclose(passed(f, x, W, b), y, rtol=1e-6)
    assert str(numba.typeof(f)) == "fwdjit(layer)"


def test_njit_jvp_with_wrong_tuples_is_a_clear_error():
    f = fwdjit(layer)

    @numba.njit
    def bad(x, W, b, dx):
        return f.jvp((x, W), (dx, None))
    with pytest.raises(numba.core.errors.TypingError, match=r"jvp of layer\(x, W, b\) in @njit code: expected "
                                                            r"f.jvp\(primals, tangents\) with two tuples of 3"):
        bad(np.ones((2, 3)), np.ones((3, 4)), 0.5, np.ones((2, 3)))


def scale_in_place(x, a):
    x *= a
    return np.sum(x)


def test_jvp_writes_into_the_callers_tangent_like_the_primal_writes_into_x():
    """Documented in README (API, in-place writes): the JVP mutates dx as the primal mutates x."""
    f = fwdjit(scale_in_place)
    x, dx = np.array([1.0, 2.0]), np.array([1.0, 0.0])
    y, dy = f.jvp((x, 3.0), (dx, 1.0))
    assert (y, dy) == (9.0, 6.0)
    assert x.tolist() == [3.0, 6.0] and dx.tolist() == [4.0, 2.0]      # the README's numbers
    x2 = np.array([1.0, 2.0])
    f(x2, 3.0)
    assert x2.tolist() == [3.0, 6.0]


def test_tangent_source_is_readable():
    f = fwdjit(model)
    src = f.tangent_source_for((True, False, False))
    assert src.startswith("def model_jvp(x, W, n, dx):")
    assert "dW" not in src and "dn" not in src          # no code for inactive values
    assert "# test_api.py:" in src                      # comments point at the source lines
    assert "dh = " in src and "ds += " in src


def test_float32_stays_float32():
    def relu_layer(x, W):
        return np.maximum(x @ W, 0.0) * 0.5 + 1.0 / (1.0 + np.exp(-x @ W))
    f = fwdjit(relu_layer)
    rng = np.random.default_rng(4)
    x, W = rng.random((4, 3), dtype=np.float32), rng.random((3, 2), dtype=np.float32)
    y = f(x, W)
    assert y.dtype == relu_layer(x, W).dtype == np.float32
    y, dy = f.jvp((x, W), (np.ones_like(x), None))
    assert y.dtype == np.float32 and dy.dtype == np.float32
    ref = central(relu_layer, (x.astype(np.float64), W.astype(np.float64)), (np.ones((4, 3)), None))
    assert np.allclose(dy, ref, rtol=1e-4, atol=1e-5)


def test_defjvp_for_a_black_box():
    @numba.njit
    def softplus(x):
        return np.log1p(np.exp(x))
    fwdjit.defjvp(softplus, lambda g, ans, x: g / (1.0 + np.exp(-x)))

    def uses(x, y):
        return softplus(x * y) + y
    f = fwdjit(uses)
    for t in ((1.0, None), (None, 1.0)):
        _, d = f.jvp((0.3, 0.7), t)
        ref = central(lambda a, b: np.log1p(np.exp(a * b)) + b, (0.3, 0.7), t)
        assert np.isclose(d, ref, rtol=1e-9)


def test_user_functions_are_transformed_recursively():
    def helper(v, k):
        return v * v * k, np.cos(v)
    def outer(x):
        a, b = helper(x, 3)
        return a + b
    _, d = fwdjit.jvp(outer, (0.4,), (1.0,))
    assert np.isclose(d, 6 * 0.4 - np.sin(0.4), rtol=1e-14)


# ----------------------------------------------------------------- errors
def test_bad_tangent_count_shape_dtype_and_int():
    f = fwdjit(model)
    x, W = np.ones((2, 3)), np.ones((3, 4))
    with pytest.raises(TangentError, match="tuples of 3 entries"):
        f.jvp((x, W, 3), (x, W))
    with pytest.raises(TangentError, match=r"wrong shape: expected \(3, 4\), given \(4, 3\)"):
        f.jvp((x, W, 3), (None, np.ones((4, 3)), None))
    with pytest.raises(TangentError, match="dtype float64.*given array of shape \\(2, 3\\) and dtype float32"):
        f.jvp((x, W, 3), (x.astype(np.float32), None, None))
    with pytest.raises(TangentError, match="'n'.*carries no derivative; pass None"):
        f.jvp((x, W, 3), (None, None, 1.0))
    assert issubclass(TangentError, FwdjitError) and issubclass(TangentError, ValueError)


def test_unsupported_call_names_file_line_and_hint():
    class Thing:
        def __call__(self, v):
            return v
    thing = Thing()

    def g(x):
        return thing(x) * 2.0
    with pytest.raises(fj_pkg.UnsupportedCall) as e:
        fwdjit(g)
    msg = str(e.value)
    assert "test_api.py:" in msg and "return thing(x) * 2.0" in msg and "^" in msg
    assert "fwdjit.defjvp" in msg


def test_active_call_without_rule_is_reported_not_wrong():
    def g(x):
        return np.convolve(x, x)[-1]
    f = fwdjit(g)
    with pytest.raises(fj_pkg.UnsupportedCall, match="no derivative rule for convolve"):
        f.jvp((np.ones(3),), (np.ones(3),))


# -------------------------------------------------------------- CLI, cache
def _run(code, cache, cwd):
    env = dict(os.environ, FWDJIT_CACHE_DIR=str(cache), PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_cli_show_prints_tangent_source(tmp_path):
    (tmp_path / "mymod.py").write_text("import numpy as np\n\ndef energy(x, k):\n    return 0.5 * k * np.sum(x * x)\n")
    env = dict(os.environ, FWDJIT_CACHE_DIR=str(tmp_path / "c"), PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "fwdjit", "show", "mymod:energy", "--active", "x"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("def energy_jvp(x, k, dx):") and "dk" not in r.stdout
    r = subprocess.run([sys.executable, "-m", "fwdjit", "cache", "info"], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0 and "files" in r.stdout


def test_second_process_loads_from_cache_and_edits_invalidate(tmp_path):
    mod = tmp_path / "physics.py"
    mod.write_text("import numpy as np\n\ndef energy(x):\n    return np.sum(np.sin(x) * x)\n")
    code = textwrap.dedent("""
        import numpy as np
        from fwdjit import fwdjit
        import physics
        f = fwdjit(physics.energy)
        x = np.linspace(0.1, 1, 4)
        y, dy = f.jvp((x,), (np.ones(4),))
        d = f.jvp.dispatcher
        print(repr(float(dy)), sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))
    """)
    first = _run(code, tmp_path / "cache", tmp_path)
    assert first.returncode == 0, first.stderr
    second = _run(code, tmp_path / "cache", tmp_path)
    v1, hits1, misses1 = first.stdout.split()
    v2, hits2, misses2 = second.stdout.split()
    assert v1 == v2
    assert (hits1, misses1) == ("0", "1")      # first process compiles
    assert (hits2, misses2) == ("1", "0")      # second one loads machine code from the cache
    mod.write_text("import numpy as np\n\ndef energy(x):\n    return np.sum(np.cos(x) * x)\n")
    third = _run(code, tmp_path / "cache", tmp_path)
    v3 = third.stdout.split()[0]
    x = np.linspace(0.1, 1, 4)
    assert np.isclose(float(v3), np.sum(-np.sin(x) * x + np.cos(x)), rtol=1e-13)


def scalars32(x, s):
    return np.sum(x * 2.0) + np.sin(s), math.sin(s), np.mean(x)


def test_scalar_results_have_numpy_dtypes():
    f = fwdjit(scalars32)
    x, s = np.ones(3, np.float32), np.float32(0.5)
    expected = [type(v) for v in scalars32(x, s)]          # np.float32, float, np.float32
    assert [type(v) for v in f(x, s)] == expected
    y, dy = f.jvp((x, s), (x, np.float32(1)))
    assert [type(v) for v in y] == expected and [type(v) for v in dy] == expected
    assert [type(v) for v in f(x.astype(np.float64), 0.5)] == [float, float, float]


# ----------------------------------------------------------------- parallel
def par_body(x, a):
    return np.sum(np.sin(x) * a + x * x)


def test_parallel_reaches_only_the_users_code(tmp_path, monkeypatch):
    import warnings
    from numba.core.errors import NumbaPerformanceWarning
    monkeypatch.setenv("FWDJIT_CACHE_DIR", str(tmp_path))      # compiled now, not loaded from a cache
    x = np.linspace(0.0, 1.0, 200)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        f = fwdjit(parallel=True)(par_body)
        y = f(x, 2.0)
        y32 = f(x.astype(np.float32), np.float32(2.0))
        _, dy = f.jvp((x, 2.0), (np.ones_like(x), None))
        _, dy32 = f.jvp((x.astype(np.float32), np.float32(2.0)), (np.ones(200, np.float32), None))
    perf = [str(r.message) for r in rec if issubclass(r.category, NumbaPerformanceWarning)]
    assert perf == []                                   # numba.njit(parallel=True) warns about none either
    assert np.isclose(y, par_body(x, 2.0), rtol=1e-13) and np.isclose(y32, y, rtol=1e-5)
    assert np.isclose(dy, np.sum(2.0 * np.cos(x) + 2 * x), rtol=1e-13) and np.isclose(dy32, dy, rtol=1e-5)
    # ... and the user's code did become parallel loops, in both the plain and the float32 versions
    for disp in (f.primal_function, f.tangent_function((True, False))):
        compiled = [c for u in disp._fwdjit_user_dispatchers for c in u.overloads.values()]
        assert len(compiled) >= 1 + (disp is f.primal_function)
        assert all(u.targetoptions["parallel"] for u in disp._fwdjit_user_dispatchers)
        assert all(c.metadata.get("parfors") for c in compiled)
