"""The per-operation matrix: elementwise functions, operators and the ``math`` twins (see harness.py)."""
import pytest

from .harness import ALL, S, params, row, run_case

E = "elementwise"
for _name, _dom, _f32 in (
        ("sin", "real", True), ("cos", "real", False), ("tan", "unit", False), ("arcsin", "unit", False),
        ("arccos", "unit", False), ("arctan", "real", False), ("sinh", "real", False), ("cosh", "real", False),
        ("tanh", "real", True), ("arcsinh", "real", False), ("arccosh", "gt1", False), ("arctanh", "unit", False),
        ("exp", "real", True), ("expm1", "real", False), ("exp2", "real", False), ("log", "pos", True),
        ("log1p", "pos", False), ("log2", "pos", False), ("log10", "pos", False), ("sqrt", "pos", True),
        ("cbrt", "pos", False), ("square", "real", False), ("reciprocal", "away", False),
        ("abs", "away", True), ("fabs", "away", False), ("sign", "away", False), ("floor", "frac", False),
        ("ceil", "frac", False), ("trunc", "frac", False), ("rint", "frac", False), ("round", "frac", False),
        ("deg2rad", "real", False), ("rad2deg", "real", False), ("negative", "real", False),
        ("sinc", "away", True)):
    row(E, _name, f"np.{_name}(a)", _dom, f32=_f32, quick=_f32 or _name in ("sign", "floor", "reciprocal"),
        shapes=ALL if _name != "round" else tuple(s for s in ALL if s is not S))
# complex-number functions of real values (real code only: a, its conjugate, 0, 0 or pi)
row(E, "conj", "np.conj(a) * a", f32=True)
row(E, "conjugate", "np.conjugate(a)", quick=False)
row(E, "real_if_close", "np.real_if_close(a) * a", f32=True)
row(E, "imag", "np.imag(a) + a", quick=False)
row(E, "angle", "np.angle(a) * a", "away", f32=True)
row(E, "round", "np.round(a)", "frac", shapes=(S,), readme=False, form="scalar",
    xfail32="Numba: np.round of a float32 scalar returns a float64")
row(E, "sinc", "np.sinc(a * 0.0) + np.sinc(a)", readme=False, form="at 0", f32=True)   # derivative 0 at 0
row(E, "nan_to_num", "np.nan_to_num(np.log(a))", "real", shapes=((5,), (3, 4)), f32=True)   # tangent 0 where replaced
row(E, "nan_to_num", "np.nan_to_num(a / (a - a), nan=1.0, posinf=2.0)", "pos", shapes=((5,),),
    readme=False, form="nan=")

PAIRS = (((5,), (5,)), ((3, 4), (4,)), (S, (2, 3, 4)), ((2, 3, 4), S), (S, S))
for _name, _doms, _f32 in (
        ("arctan2", ("real", "away"), False), ("hypot", ("away", "away"), False), ("power", ("pos", "real"), True),
        ("maximum", ("latA", "latB"), True), ("minimum", ("latA", "latB"), False),
        ("fmax", ("latA", "latB"), False), ("fmin", ("latA", "latB"), False),
        ("mod", ("frac", "gt1"), True), ("remainder", ("frac", "gt1"), False),
        ("logaddexp", ("real", "real"), True), ("logaddexp2", ("real", "real"), False),
        ("add", ("real", "real"), False), ("subtract", ("real", "real"), False),
        ("multiply", ("real", "real"), False), ("divide", ("real", "away"), False)):
    row(E, _name, f"np.{_name}(a, b)", *_doms, shapes=PAIRS, f32=_f32,
        quick=_name in ("arctan2", "power", "maximum", "mod", "logaddexp", "logaddexp2", "divide"))
row(E, "clip", "np.clip(a, b, c)", "latA", "lo", "hi", shapes=(((5,), (5,), (5,)), ((3, 4), S, S)))
row(E, "clip", "np.clip(a, -0.65, 0.85)", "latA", readme=False, form="constant bounds",
    shapes=tuple(s for s in ALL if s is not S))
row(E, "clip", "np.clip(a, -0.65, 0.85)", "latA", readme=False, form="scalar", shapes=(S,),
    xfail="Numba compiles np.clip for arrays only")
row(E, "where", "np.where(a > 0.0, a * a, b)", "away", "real", shapes=PAIRS)

# operators (README's arithmetic row is written by hand; these check it)
for _op, _doms in (("+", ("real", "real")), ("-", ("real", "real")), ("*", ("real", "real")),
                   ("/", ("real", "away")), ("%", ("frac", "gt1")), ("**", ("pos", "real"))):
    row("arithmetic", _op, f"a {_op} b", *_doms, shapes=PAIRS, readme=False, quick=_op in ("%", "**"))
row("arithmetic", "//", "(a // b) * a", "frac", "gt1", shapes=PAIRS, readme=False, quick=False)

M = "math"
for _name, _dom in (("sin", "real"), ("cos", "real"), ("tan", "unit"), ("asin", "unit"), ("acos", "unit"),
                    ("atan", "real"), ("sinh", "real"), ("cosh", "real"), ("tanh", "real"), ("asinh", "real"),
                    ("acosh", "gt1"), ("atanh", "unit"), ("exp", "real"), ("expm1", "real"), ("log", "pos"),
                    ("log1p", "pos"), ("log2", "pos"), ("log10", "pos"), ("sqrt", "pos"), ("fabs", "away"),
                    ("erf", "real"), ("erfc", "real"), ("radians", "real"), ("degrees", "real"),
                    ("floor", "frac"), ("ceil", "frac"), ("trunc", "frac")):
    row(M, f"math.{_name}", f"math.{_name}(a) * a", _dom, shapes=(S,), quick=_name in ("sin", "erf", "floor"),
        xfail32="NumPy's float32 scalar has no __trunc__: no float32 reference" if _name == "trunc" else None)
for _name, _doms in (("atan2", ("real", "away")), ("hypot", ("away", "away")), ("pow", ("pos", "real")),
                     ("log", ("pos", "gt1"))):
    row(M, f"math.{_name}", f"math.{_name}(a, b)", *_doms, shapes=((S, S),), quick=_name in ("log", "pow"))


@pytest.mark.parametrize("r,shapes,dtype", params(("elementwise", "arithmetic", "math")))
def test_op(r, shapes, dtype):
    run_case(r, shapes, dtype)
