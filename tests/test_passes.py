"""Each compiler pass on its own: small before/after examples."""
import ast
import textwrap

import numpy as np
import pytest

from fwdjit import compiler
from fwdjit.compiler.activity import Activity
from fwdjit.compiler.float32 import float32_twin
from fwdjit.errors import UnsupportedSyntax
from fwdjit.compiler.normalize import NameGen, normalize
from fwdjit.compiler.resolve import FunctionInfo, parse_function
from fwdjit.compiler.tangent import Resolver, TangentGen, is_cheap, render
from fwdjit.compiler.validate import validate


def info_of(src, namespace=None):
    tree = ast.parse(textwrap.dedent(src)).body[0]
    return FunctionInfo(func=None, name=tree.name, qualname=tree.name, filename="<t>", tree=tree,
                        params=[a.arg for a in tree.args.args], namespace=namespace or {"np": np})


# --------------------------------------------------------------- resolve
SCALE = 3.0


def uses_globals(x):
    return np.sin(x) * SCALE


def test_resolve_binds_free_names_and_absolute_lines():
    info = parse_function(uses_globals)
    assert info.namespace["np"] is np and info.namespace["SCALE"] == 3.0
    assert info.params == ["x"]
    assert info.tree.lineno == uses_globals.__code__.co_firstlineno
    assert "return np.sin(x) * SCALE" in info.source_line(info.tree.body[0].lineno)


def test_resolve_rejects_closure_over_mutable_state():
    state = [1.0]

    def f(x):
        return x * state[0]
    with pytest.raises(UnsupportedSyntax, match="closure over mutable state"):
        parse_function(f)


def test_resolve_records_undefined_names_and_validate_rejects_them():
    def f(x):
        return x * not_defined_anywhere  # noqa: F821
    info = parse_function(f)
    assert [name for _, name in info.undefined] == ["not_defined_anywhere"]
    with pytest.raises(UnsupportedSyntax, match="not_defined_anywhere' is not defined"):
        validate(info)


# -------------------------------------------------------------- validate
@pytest.mark.parametrize("body,construct", [
    ("try:\n    y = x\nexcept Exception:\n    y = x\nreturn y", "try/except"),
    ("with open('f') as h:\n    pass\nreturn x", "with statement"),
    ("return [v for v in x]", "list comprehension"),
    ("return (v for v in x)", "generator expression"),
    ("g = lambda v: v\nreturn x", "lambda"),
    ("global G\nG = x\nreturn x", "global statement"),
    ("return {'a': x}", "dict"),
    ("return f'{x}'", "f-string (string formatting)"),
    ("def h(v):\n    return v\nreturn x", "nested function"),
    ("class C:\n    pass\nreturn x", "class definition"),
    ("x.attr = 1.0\nreturn x", "attribute assignment"),
    ("yield x", "yield (generator)"),
])
def test_validate_names_the_construct(body, construct):
    src = "def f(x):\n" + textwrap.indent(body, "    ")
    info = info_of(src)
    with pytest.raises(UnsupportedSyntax) as e:
        validate(info)
    assert e.value.construct == construct
    assert e.value.hint
    assert e.value.lineno >= 2


def test_validate_accepts_the_subset():
    src = """
    def f(x, a, n):
        '''doc'''
        s = 0.0
        for i in range(n):
            if x > 0 and not i == 2:
                s += a[i] ** 2
            elif x < -1:
                continue
            else:
                break
        while s > 10.0:
            s = s / 2.0
        y = z = s if s > 1 else -s
        a[0], a[1] = y, z
        return (s, y)
    """
    validate(info_of(src))


# ------------------------------------------------------------- normalize
def test_normalize_desugars_and_keeps_lines():
    src = "def f(x):\n    a, b = x, 2.0 * x\n    c = d = a\n    for v in x:\n        a **= v\n    return a"
    tree = ast.parse(src).body[0]
    out = normalize(tree, NameGen({"f", "x", "a", "b", "c", "d", "v"}))
    text = ast.unparse(out)
    assert "a = x\n    b = 2.0 * x" in text
    assert "c = a\n    d = c" in text
    assert "for _i1 in range(len(x)):\n        v = x[_i1]" in text
    assert "a = a ** v" in text
    assert all(hasattr(n, "lineno") for n in ast.walk(out) if isinstance(n, ast.stmt))


def test_normalize_swaps_through_temporaries():
    tree = ast.parse("def f(a, b):\n    a, b = b, a\n    return a").body[0]
    text = ast.unparse(normalize(tree, NameGen({"a", "b", "f"})))
    assert "_t1 = b\n    _t2 = a\n    a = _t1\n    b = _t2" in text


# -------------------------------------------------------------- activity
def activity(src, active, namespace=None):
    info = info_of(src, namespace)
    tree = normalize(info.tree, NameGen({"x"}), info)
    return Activity(info, tree, set(active), resolver=Resolver(info)).run()


def test_activity_ints_and_shapes_carry_no_tangent():
    src = """
    def f(x, n):
        m = x.shape[0]
        k = n * 2
        s = 0.0
        for i in range(m):
            s += x[i] * i
        j = np.argmax(x)
        c = x > 0
        return s
    """
    assert activity(src, {"x"}) == {"x", "s"}


def test_activity_views_and_inplace_writes_propagate():
    src = """
    def f(x, y):
        a = np.zeros(3)
        v = a[1:]
        v[0] = x * 2.0
        b = y
        return a
    """
    act = activity(src, {"x"})
    assert {"a", "v", "x"} <= act and "b" not in act


def test_activity_floor_is_zero():
    src = "def f(x):\n    k = np.floor(x)\n    return k"
    assert activity(src, {"x"}) == {"x"}


# --------------------------------------------------------------- tangent
def lines(text):
    return [l.strip() for l in text.splitlines()]


def tangent_src(src, mask, namespace=None):
    info = info_of(src, namespace)
    return render(compiler.jvp(info, mask, Resolver(info))[0])


def test_tangent_no_code_for_inactive_values():
    src = "def f(x, w, n):\n    k = n + 1\n    y = x * w\n    return y * k"
    out = tangent_src(src, (True, False, False))
    assert "def f_jvp(x, w, n, dx):" in out
    assert "dy = dx * w" in out
    assert "dk" not in out and "dw" not in out and "dn" not in out


def test_tangent_comments_point_at_source_lines():
    out = tangent_src("def f(x):\n    y = np.exp(x)\n    return y", (True,))
    assert "# <t>:2: y = np.exp(x)" in out
    assert "y = np.exp(x)\n    dy = dx * y" in out      # exp reuses its result


def test_tangent_reads_old_value_before_overwrite():
    out = tangent_src("def f(x):\n    x = x * x\n    return x", (True,))
    # the tangent must be computed from the old x, so it comes first
    L = lines(out)
    assert L.index("dx = dx * x + x * dx") < L.index("x = x * x")


def test_tangent_power_in_base_and_exponent():
    out = tangent_src("def f(a, b):\n    return a ** b", (True, True))
    assert "fj.pow_dexp(a" in out and "b * a ** (b - 1) * da" in out


def test_tangent_inplace_mult_uses_old_value():
    out = tangent_src("def f(x, y):\n    x *= y\n    return x", (True, True))
    L = lines(out)
    # the operand's tangent is saved before dx changes in place (it could read dx), then the old x is used
    assert L.index("_de1 = fj.fresh(dy)") < L.index("dx *= y") < L.index("dx += x * _de1") < L.index("x *= y")


def test_is_cheap_keeps_transcendentals_out():
    assert is_cheap(ast.parse("x[1:] - x[:-1] ** 2", mode="eval").body)
    assert not is_cheap(ast.parse("np.sin(x)", mode="eval").body)
    assert not is_cheap(ast.parse("a @ b", mode="eval").body)


# ---------------------------------------------------------------- dtypes
def test_float32_twin_wraps_literals_and_ufunc_results():
    tree = ast.parse("def f(x):\n    y = np.maximum(x, 0.0) * 0.5\n    return np.sin(y)").body[0]
    text = ast.unparse(float32_twin(tree, {"np": np}))
    assert "fj.lit(0.0, x)" in text and "fj.lit(0.5, " in text
    assert "fj.like(np.sin(y), y)" in text


def test_float32_twin_leaves_conditions_alone():
    tree = ast.parse("def f(x):\n    if x > 0.5:\n        x = x * 2.0\n    return x").body[0]
    text = ast.unparse(float32_twin(tree, {"np": np}))
    assert "if x > 0.5:" in text and "x * fj.lit(2.0, x)" in text


def test_constant_if_tests_are_folded_but_not_huge_powers():
    from fwdjit.compiler.normalize import _const_truth
    import ast as _ast
    assert _const_truth(_ast.parse("0.5 <= 0.25", mode="eval").body) is False
    assert _const_truth(_ast.parse("not (1 < 2 and 3 > 4)", mode="eval").body) is True
    assert _const_truth(_ast.parse("x < 1", mode="eval").body) is None
    assert _const_truth(_ast.parse("10 ** 10 ** 10 > 0", mode="eval").body) is None
