"""Second order through the new rules: fwdjit differentiates its own tangent code (hessian), checked
against central differences of fwdjit.grad; np.cumprod is refused with fwdjit's own error."""
import numpy as np
import pytest

import fwdjit


def f_logaddexp(x):
    return np.sum(np.logaddexp(x, 2.0 * x))

def f_sinc(x):
    return np.sum(np.sinc(x))

def f_det(x):
    return np.linalg.det(x.reshape((3, 3)))

def f_slogdet(x):
    s, l = np.linalg.slogdet(x.reshape((3, 3)))
    return l

def f_inv(x):
    return np.sum(np.linalg.inv(x.reshape((3, 3))) ** 2)

def f_solve(x):
    return np.sum(np.linalg.solve(x.reshape((3, 3)), x[:3]) ** 2)

def f_partition(x):
    return np.sum(np.partition(x, 2) ** 3 * np.arange(9.0))

def f_mod(x):
    return np.sum(np.mod(x, 0.7) ** 3)

def f_nan(x):
    return np.sum(np.nan_to_num(np.log(x)) ** 2)

def f_split(x):
    s = np.split(x, 3)
    return np.sum(s[0] * s[1] * s[2])

def f_tril(x):
    return np.sum(np.tril(x.reshape((3, 3))) ** 3)

def f_append(x):
    return np.sum(np.append(x, x * x) ** 3)

def f_rot(x):
    return np.sum(np.rot90(x.reshape((3, 3))) * np.arange(9.0).reshape((3, 3)) * x.reshape((3, 3)))

def f_cumprod(x):
    return np.sum(np.cumprod(x))


CASES = [f_logaddexp, f_sinc, f_det, f_slogdet, f_inv, f_solve, f_partition, f_mod, f_nan, f_split, f_tril,
         f_append, f_rot]


def _point():
    rng = np.random.default_rng(1)
    return np.abs((3 * np.eye(3) + rng.uniform(-0.5, 0.5, (3, 3))).ravel()) + 0.3


@pytest.mark.exhaustive
@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_hessian(f):
    x = _point()
    H = fwdjit.hessian(fwdjit.fwdjit(f))(x)
    g = fwdjit.grad(fwdjit.fwdjit(f))
    h = 1e-5
    ref = np.array([(g(x + h * e) - g(x - h * e)) / (2 * h) for e in np.eye(x.size)])
    assert np.max(np.abs(H - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_cumprod_second_order_is_refused():
    with pytest.raises(fwdjit.UnsupportedCall, match="second derivative of np.cumprod"):
        fwdjit.hessian(fwdjit.fwdjit(f_cumprod))(_point())
