"""Default parameter values that are functions (``def f(x, act=np.tanh)``), and keyword arguments in
calls to user functions (``inner(x, scale=3.0)``).

A function default is bound when the function is transformed: the body calls it as it would a global
of that value, and the compiled code has no such parameter.  Met in autograd's test suite
(test_plain_numpy_reductions_on_box: ``def fun(a, _r=np.prod)``, defined in a loop over reductions).
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fwdjit
from fwdjit import TangentError, UnsupportedSyntax
from fwdjit.testing import check_jvp

BASE = np.array([0.6, 1.3, 0.9, 2.1, 1.7])


def _with_default(reduction):
    def reduced(a, _r=reduction):
        return _r(np.exp(a) * BASE)
    return reduced


def inner(x, act=np.tanh, scale=2.0):
    return act(x) * scale


def squash(x):
    return x / (1.0 + np.abs(x))


def inner_user(x, act=squash):
    return np.sum(act(x * 3.0))


def outer(x, w):
    return np.sum(inner(x * w)) + np.sum(inner(x, scale=3.0)) + inner_user(w)


def passes_a_function(x):
    return inner(x, np.sin)


def passes_by_keyword(x):
    return inner(x, act=np.sin)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", [np.sum, np.prod, np.max, np.min], ids=lambda r: r.__name__)
def test_function_default_in_functions_of_one_text(reduction, dtype):
    # one source text, four functions: each gets its own derivative
    f = _with_default(reduction)
    check_jvp(f, (dtype(0.7),))
    check_jvp(f, (np.linspace(-0.5, 0.5, 5).astype(dtype),))
    x = 0.7
    assert fwdjit.grad(f)(x) == pytest.approx(reduction(np.exp(x) * BASE) if reduction is not np.prod
                                              else 5 * np.prod(np.exp(x) * BASE), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_function_defaults_and_keywords_in_callees(dtype):
    rng = np.random.default_rng(2)
    check_jvp(outer, (rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)))
    code = fwdjit.fwdjit(outer).tangent_source
    assert "inner_jvp_1(x, 3.0, dx)" in code and "inner_jvp_1(x * w, 2.0, " in code   # by position, defaults in
    assert "act" not in fwdjit.fwdjit(inner).tangent_source.split(")", 1)[0]    # no parameter 'act'


def test_a_bound_function_cannot_be_passed():
    F = fwdjit.fwdjit(inner)
    assert F.params == ["x", "scale"]
    assert F(0.5) == pytest.approx(2.0 * np.tanh(0.5))
    with pytest.raises(TangentError, match="act defaults to a function"):
        F(0.5, 2.0, np.sin)
    for f in (passes_a_function, passes_by_keyword):
        with pytest.raises(UnsupportedSyntax, match="'act' of inner defaults to a function") as info:
            fwdjit.fwdjit(f)
        assert info.value.lineno == f.__code__.co_firstlineno + 1


def test_function_defaults_share_no_cached_derivative(tmp_path):
    """The same text with different function defaults, in two processes sharing one persistent cache."""
    src = textwrap.dedent("""
        import numpy as np, fwdjit
        fs = []
        for red in (np.sum, np.max, np.min):
            def f(a, _r=red):
                return _r(np.exp(a) * np.array([0.5, 2.0]))
            fs.append(f)
        print(*[fwdjit.fwdjit(f).jvp((0.3,), (1.0,))[1] for f in fs])
    """)
    script = tmp_path / "defaults.py"
    script.write_text(src)
    env = {**__import__("os").environ, "FWDJIT_CACHE_DIR": str(tmp_path / "cache")}
    want = np.exp(0.3) * np.array([2.5, 2.0, 0.5])
    for _ in range(2):
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
        np.testing.assert_allclose([float(v) for v in run.stdout.split()], want, rtol=1e-12)
