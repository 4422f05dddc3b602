"""Regressions found by running autograd's own per-operation suite against fwdjit (issue 14).

Each test reproduces the case as that suite met it; all were silently wrong values before.
"""
import numpy as np
import pytest

import fwdjit
from fwdjit.errors import TangentError, UnsupportedSyntax
from fwdjit.testing import check_jvp

ZERO_EXPONENT = 0.0


def power_global_exponent(x):
    return np.power(x, ZERO_EXPONENT)


def power_param_exponent(x, y):
    return np.power(x, y)


def power_operator(x, y):
    return x ** y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_power_with_zero_exponent_has_zero_derivative_at_zero(dtype):
    # autograd's test_power_arg0: grad(lambda x: np.power(x, 0.0))(0.0) == 0 (fwdjit gave nan: 0 * 0 ** -1)
    assert fwdjit.grad(power_global_exponent)(0.0) == 0.0
    for fn in (power_param_exponent, power_operator):
        f = fwdjit.fwdjit(fn)
        value, tangent = f.jvp((dtype(0.0), dtype(0.0)), (dtype(1.0), None))
        assert value == 1.0 and tangent == 0.0
        x = np.array([0.0, 1.5, 2.0], dtype)
        y = np.array([0.0, 0.0, 3.0], dtype)
        value, tangent = f.jvp((x, y), (np.ones(3, dtype), None))
        assert tangent.dtype == dtype
        np.testing.assert_allclose(tangent, [0.0, 0.0, 12.0], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_power_with_inactive_exponent_matches_the_reference(dtype):
    x = np.array([0.5, 1.5, 2.0], dtype)
    y = np.array([0.5, 2.0, 3.5], dtype)
    check_jvp(power_param_exponent, (x, y), (np.ones(3, dtype), None))
    check_jvp(power_param_exponent, (x, y))


def abs_sum(x):
    return np.abs(x).sum()


def norm_of(x):
    return np.linalg.norm(x)


@pytest.mark.parametrize("fn", [abs_sum, norm_of])
def test_complex_arguments_are_refused_not_differentiated(fn):
    # autograd's test_abs / test_vector_2norm_complex: fwdjit returned a complex tangent for a real output
    f = fwdjit.fwdjit(fn)
    z = np.array([1 + 2j, 3 - 1j])
    for call in (lambda: f.jvp((z,), (z,)), lambda: f.jvp((z,), (None,)),
                 lambda: fwdjit.jvp(fn, (z,), (z,)), lambda: f.jvp((z,), (np.stack([z, z]),), batched=True)):
        with pytest.raises(TangentError, match="argument 'x' is complex"):
            call()
    assert f(z) == pytest.approx(fn(z))          # the primal alone is fine


def through_complex(x):
    z = x.astype(np.complex128)
    return np.abs(z).sum()


def test_complex_values_inside_a_differentiated_function_are_refused():
    f = fwdjit.fwdjit(through_complex)
    with pytest.raises(UnsupportedSyntax, match="complex type np.complex128") as e:
        f.jvp((np.ones(2),), (np.ones(2),))
    assert "test_regressions_autograd_suite.py" in str(e.value)
