"""Lambdas are transformed like functions written with ``def`` (autograd's suite checks most
operations through lambdas: ``check_grads(lambda x: np.sin(x))(x)``)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fwdjit
from fwdjit.errors import UnsupportedSyntax
from fwdjit.testing import check_jvp

SCALE = 3.0
cube = lambda x: x * x * x * SCALE  # noqa: E731
PAIR = (lambda x: np.sin(x) * x, lambda x: np.cos(x) * 2.0)  # two lambdas on one line, same parameters
with_default = lambda x, n=3: np.sum(x[:n] * x[:n])  # noqa: E731
calls_inner = lambda x: (lambda y: y * 3.0)(x)  # noqa: E731


def closure_over(c):
    return lambda x, y: np.sum(np.tanh(x) * c) + y * c


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambda_jvp_matches_the_reference(dtype):
    x = np.linspace(0.2, 1.4, 5).astype(dtype)
    check_jvp(cube, (dtype(0.7),))
    check_jvp(with_default, (x,))
    check_jvp(closure_over(dtype(1.5)), (x, dtype(0.3)))
    value, tangent = fwdjit.fwdjit(cube).jvp((dtype(2.0),), (dtype(1.0),))
    assert value == 24.0 and tangent == 36.0


def test_two_lambdas_on_one_line_are_told_apart():
    if not hasattr(cube.__code__, "co_positions"):
        pytest.skip("Python < 3.11 has no code positions to tell them apart")
    (v0, t0), (v1, t1) = (fwdjit.fwdjit(g).jvp((0.5,), (1.0,)) for g in PAIR)
    assert v0 == pytest.approx(np.sin(0.5) * 0.5) and t0 == pytest.approx(np.cos(0.5) * 0.5 + np.sin(0.5))
    assert v1 == pytest.approx(np.cos(0.5) * 2.0) and t1 == pytest.approx(-2.0 * np.sin(0.5))


def test_closures_with_different_values_get_their_own_derivative():
    x = np.arange(1.0, 4.0)
    one, five = closure_over(1.0), closure_over(5.0)
    _, t1 = fwdjit.fwdjit(one).jvp((x, 0.0), (np.ones(3), 1.0))
    _, t5 = fwdjit.fwdjit(five).jvp((x, 0.0), (np.ones(3), 1.0))
    assert t1 == pytest.approx(np.sum(1 - np.tanh(x) ** 2) + 1.0)
    assert t5 == pytest.approx(5.0 * (np.sum(1 - np.tanh(x) ** 2) + 1.0))


def test_grad_and_generated_name_of_a_lambda():
    g = fwdjit.grad(lambda x: np.sum(np.exp(x)))(np.array([0.0, 1.0]))
    np.testing.assert_allclose(g, np.exp([0.0, 1.0]))
    f = fwdjit.fwdjit(cube)
    assert f.tangent_source.startswith(f"def lambda_{cube.__code__.co_firstlineno}_jvp(x, dx):")
    assert "cube = lambda x: x * x * x * SCALE" in f.tangent_source    # the source line as its comment


def test_a_lambda_inside_a_lambda_is_refused_located():
    with pytest.raises(UnsupportedSyntax) as exc:
        fwdjit.fwdjit(calls_inner)
    assert exc.value.lineno == calls_inner.__code__.co_firstlineno and "lambda" in str(exc.value)


def test_two_lambdas_with_identical_text_share_no_cached_derivative(tmp_path):
    """Same text on two lines, different closure values, run twice against one persistent cache."""
    src = textwrap.dedent("""
        import numpy as np, fwdjit
        def make(c):
            return lambda x: np.sin(x) * c
        f = make(2.0)
        g = make(7.0)
        h = lambda x: np.sin(x) * 2.0
        k = lambda x: np.sin(x) * 7.0
        print(fwdjit.fwdjit(f).jvp((0.3,), (1.0,))[1], fwdjit.fwdjit(g).jvp((0.3,), (1.0,))[1],
              fwdjit.fwdjit(h).jvp((0.3,), (1.0,))[1], fwdjit.fwdjit(k).jvp((0.3,), (1.0,))[1])
    """)
    script = tmp_path / "lams.py"
    script.write_text(src)
    env = {**__import__("os").environ, "FWDJIT_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
            for _ in range(2)]
    for run in runs:
        got = [float(v) for v in run.stdout.split()]
        np.testing.assert_allclose(got, np.cos(0.3) * np.array([2.0, 7.0, 2.0, 7.0]), rtol=1e-12)
