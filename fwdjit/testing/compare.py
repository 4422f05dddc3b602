"""Comparing a JVP with the reference: the tolerances, and the checks of one output leaf (its primal,
its tangent's dtype and shape, its values) that raise :class:`JVPMismatch` with both values and the error.

>>> import numpy as np
>>> check_tangent_values("demo", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-13]),
...                      np.zeros(2), np.zeros(2), DEFAULT_TOLERANCES["float64"], "fd", 8)["max_abs_err"] < 1e-12
True
"""
import numpy as np

from .values import dtype_of


class JVPMismatch(AssertionError):
    """A JVP (or its primal output) disagrees with the reference."""


class UnreliableReference(AssertionError):
    """The finite-difference reference itself is not trustworthy.

    Raised when two finite-difference estimates with steps ``h`` and ``h/2``
    disagree by more than the tolerance plus what rounding of the function's
    values explains (``~ eps_mach |f| / h``, so it scales with the function's
    magnitude: ``1e6 + g(x)`` with ``g'(x) = 0`` is fine): the function is probably not smooth
    near the inputs (a kink of ``abs``/``max``, a jump of ``floor``, a branch
    that flips) or the step leaves its domain.  Move the inputs away from the
    kink, pass a smaller ``eps``, or use ``method="complex"``.
    """


#: Default tolerances, keyed by the precision that the check runs at
#: (float32 if any differentiable input or the checked output is float32,
#: else float64).  ``rtol`` is relative to the largest magnitude of the
#: reference tangent of the output being checked (``max|ref|``), ``atol`` is
#: absolute.  ``primal_rtol`` is for comparing the JVP's primal output with the
#: plain function's output.
#:
#: float64: the 8th-order reference is accurate to ~1e-12 relative for smooth
#: functions, so 1e-8 leaves room for the difference between compiled and
#: NumPy arithmetic (summation order, libm vs. SIMD transcendental functions)
#: while still catching any wrong derivative rule (which is typically off by
#: O(1)).
#:
#: float32: the JVP is computed in float32 (unit roundoff 6e-8), while the
#: reference differentiates the float64 function.  Rounding errors of the
#: tangent grow like those of the primal: roughly ``n * eps`` for reductions
#: over ``n`` terms, amplified by cancellation (the condition number of the
#: tangent computation).  ``rtol=2e-3`` (~1.7e4 float32 ulps) accepts
#: condition numbers up to ~1e3 on length-100 reductions, yet is still three
#: orders of magnitude below the O(1) relative error of a wrong rule.
DEFAULT_TOLERANCES = {
    "float64": dict(rtol=1e-8, atol=1e-12, primal_rtol=1e-10, primal_atol=1e-12),
    "float32": dict(rtol=2e-3, atol=1e-6, primal_rtol=1e-4, primal_atol=1e-6),
}


def precision(arrays_or_dtypes):
    """``"float32"`` if any of the dtypes is a float narrower than 64 bits, else ``"float64"``."""
    for d in arrays_or_dtypes:
        if d is not None and np.dtype(d).kind == "f" and np.dtype(d).itemsize < 8:
            return "float32"
    return "float64"


def fmt_index(idx, shape):
    if len(shape) == 0:
        return "(scalar)"
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def check_structure(header, out, tout, plain_out, flatten_out):
    """The JVP's (primal, tangent) outputs have the plain function's tuple (and list) structure; their leaves."""
    is_tuple = isinstance(out, tuple)
    is_list = isinstance(out, list)
    if is_tuple != isinstance(tout, tuple) or is_list != isinstance(tout, list):
        raise JVPMismatch("%s\n  primal output is %s but tangent output is %s"
                          % (header, type(out).__name__, type(tout).__name__))
    pout = flatten_out(out)
    tleaves = flatten_out(tout)
    if (is_tuple or is_list) and len(pout) != len(tleaves):
        raise JVPMismatch("%s\n  primal output has %d leaves but tangent output has %d"
                          % (header, len(pout), len(tleaves)))
    if len(pout) != len(plain_out) or [p for p, _ in pout] != [p for p, _ in plain_out]:
        raise JVPMismatch("%s\n  output structure differs: fwdjit %s, plain function %s"
                          % (header, [p for p, _ in pout], [p for p, _ in plain_out]))
    return pout, tleaves


def check_primal_output(where, pv, qv, tol, check_values=True, check_dtype=True):
    """The JVP's primal output ``pv`` equals the plain function's ``qv`` (dtype, shape, values)."""
    pdt = dtype_of(pv)
    if check_dtype and dtype_of(qv) != pdt:
        raise JVPMismatch("%s\n  primal output dtype %s differs from the plain "
                          "function's %s" % (where, pdt, dtype_of(qv)))
    if np.shape(qv) != np.shape(pv):
        raise JVPMismatch("%s\n  primal output shape %s differs from the plain "
                          "function's %s" % (where, np.shape(pv), np.shape(qv)))
    if not check_values or pdt.kind not in "fciub":
        return
    a = np.asarray(pv).astype(np.complex128 if pdt.kind == "c" else np.float64)
    b = np.asarray(qv).astype(a.dtype)
    if a.dtype.kind != "f" or not a.size:
        return
    err = np.abs(a - b)
    pscale = float(np.max(np.abs(b), initial=0.0)) if np.all(np.isfinite(b)) else 0.0
    allowed = tol["primal_atol"] + tol["primal_rtol"] * pscale
    bad = ~(err <= allowed) & ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if np.any(bad):
        k = np.unravel_index(int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1))), a.shape)
        raise JVPMismatch(
            "%s\n  primal output differs from the plain function at %s:\n"
            "    fwdjit:         %r\n    plain function: %r\n"
            "    abs error: %.3e (allowed %.3e = primal_atol %.1e + primal_rtol %.1e * max|out| %.3e)"
            % (where, fmt_index(k, a.shape), a[k], b[k], err[k], allowed,
               tol["primal_atol"], tol["primal_rtol"], pscale))


def check_tangent_form(where, pv, tv):
    """A float output's tangent has its dtype and shape; a non-float output's is None or zero.

    Returns False when there are no values to compare (non-float output)."""
    pdt = dtype_of(pv)
    if pdt.kind not in "fc":
        if tv is not None and np.any(np.asarray(tv) != 0):
            raise JVPMismatch("%s\n  non-float output has a nonzero tangent %r" % (where, tv))
        return False
    if tv is None:
        raise JVPMismatch("%s\n  tangent output is None for a float output" % where)
    if dtype_of(tv) != pdt or np.shape(tv) != np.shape(pv):
        raise JVPMismatch(
            "%s\n  tangent has dtype %s and shape %s, but the primal output has "
            "dtype %s and shape %s" % (where, dtype_of(tv), np.shape(tv), pdt, np.shape(pv)))
    return True


def _check_reliable(where, r, noise, floor, scale, at, rt):
    """The reference is unreliable when D(h) and D(h/2) disagree by more than the
    tolerance *and* more than rounding explains.  Rounding of f's values puts up to
    ``floor`` = 2 sum|c| eps_mach |f| / h into D(h/2) (half that into D(h)), so a large
    |f| with a small derivative (1e6 + g(x) with g'(x) = 0) is noisy, not unsmooth: the
    allowance scales with the function's magnitude.  For |f| ~ 1 it is ~1e-12."""
    floor = np.where(np.isfinite(floor), np.asarray(floor, dtype=np.float64), 0.0)
    excess = noise - 3.0 * floor            # |D(h) - D(h/2)| beyond 2 * floor
    if float(np.max(excess, initial=0.0)) > at + 10.0 * rt * scale:
        k = np.unravel_index(int(np.argmax(excess)), r.shape) if r.ndim else ()
        raise UnreliableReference(
            "%s\n  the finite-difference reference is unreliable: estimates with "
            "steps h and h/2 differ by %.3e at %s, %.3e more than rounding of the "
            "function's values explains (max|ref| = %.3e, rtol %.1e).\n"
            "  Is the function smooth near these inputs (abs/max/floor kinks, "
            "branches, domain edges)?  Try a smaller eps or method='complex'."
            % (where, float(noise[k] - floor[k]), fmt_index(k, r.shape), float(excess[k]), scale, rt))


def check_tangent_values(where, tv, ref, noise, floor, tol, method, order, rtol=None, atol=None):
    """The tangent ``tv`` agrees with the reference ``ref`` within the tolerance plus the reference's
    own noise; returns ``{"max_abs_err", "max_rel_err"}``."""
    got = np.asarray(tv).astype(np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if got.shape != r.shape:
        raise JVPMismatch("%s\n  tangent shape %s differs from the reference's %s" % (where, got.shape, r.shape))
    rt = tol["rtol"] if rtol is None else rtol
    at = tol["atol"] if atol is None else atol
    finite = np.isfinite(r)
    scale = float(np.max(np.abs(r[finite]), initial=0.0))
    noise = np.where(np.isfinite(noise), noise, np.inf)
    _check_reliable(where, r, noise, floor, scale, at, rt)
    err = np.abs(got - r)
    allowed = at + rt * scale + noise
    bad = ~(err <= allowed)
    bad &= ~(got == r)  # equal infinities are fine
    rel = err / scale if scale > 0 else np.where(err > 0, np.inf, 0.0)
    entry = dict(max_abs_err=float(np.max(err, initial=0.0)),
                 max_rel_err=float(np.max(np.where(np.isnan(rel), np.inf, rel), initial=0.0)))
    if np.any(bad):
        score = np.where(bad, np.nan_to_num(err - allowed, nan=np.inf), -np.inf)
        k = np.unravel_index(int(np.argmax(score)), r.shape) if r.ndim else ()
        method_desc = "order-%d central differences" % order if method == "fd" else "complex step"
        raise JVPMismatch(
            "%s\n  tangent mismatch at component %s (%d of %d components fail)\n"
            "    fwdjit:    %r\n    reference: %r  (%s)\n"
            "    abs error: %.3e   rel error: %.3e (relative to max|ref| = %.3e)\n"
            "    allowed:   %.3e = atol %.1e + rtol %.1e * max|ref| + reference noise %.1e"
            % (where, fmt_index(k, r.shape), int(np.sum(bad)), r.size,
               float(got[k]), float(r[k]), method_desc, float(err[k]),
               float(rel[k]), scale, float(allowed[k]), at, rt, float(noise[k])))
    return entry
