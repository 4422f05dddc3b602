"""Check that every corpus function compiles with plain ``numba.njit``.

    python tests/njit_corpus_check.py [NAME ...]

Every plain function of tests/functions.py (helpers included) is replaced by
its ``numba.njit`` dispatcher, so calls between corpus functions resolve to
compiled helpers.  Each case then runs on its float64 and float32 example
arguments and the result is compared with plain NumPy (values, and dtypes:
plain Numba does not follow NumPy 2's NEP 50 rules for Python float literals
with float32 data, so dtype differences are listed, not errors).  Not a
pytest module: it takes about a minute.
"""
import inspect
import os
import sys
import warnings


def _dtype_name(v):
    import numpy as np
    if isinstance(v, tuple):
        return "(" + ", ".join(_dtype_name(e) for e in v) + ")"
    if type(v) is float:
        return "float"
    return np.asarray(v).dtype.name


def _same(a, b):
    import numpy as np
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5)


def _copy(args):
    import numpy as np
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def main(names):
    import numba
    import numpy as np
    warnings.simplefilter("ignore")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import functions as F

    plain = {}
    for n, f in list(vars(F).items()):
        if inspect.isfunction(f) and f.__module__ == F.__name__ and not n.startswith("_"):
            plain[n] = f
            setattr(F, n, numba.njit(f))
    errors = 0
    for case in F.CORPUS:
        if names and case.name not in names:
            continue
        for dt in (np.float64, np.float32):
            args = case.args(dt)
            want = plain[case.name](*_copy(args))
            try:
                got = getattr(F, case.name)(*_copy(args))
            except Exception as e:  # noqa: BLE001
                errors += 1
                print("%-28s %-8s NJIT ERROR %s" % (case.name, np.dtype(dt).name,
                                                    str(e).splitlines()[:4]))
                continue
            ok = _same(got, want)
            errors += not ok
            print("%-28s %-8s %s numpy %s, njit %s" % (
                case.name, np.dtype(dt).name, "ok      " if ok else "MISMATCH",
                _dtype_name(want), _dtype_name(got)))
    print("%d problem(s)" % errors)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
