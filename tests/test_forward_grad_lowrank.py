"""Low-rank directions: the variance of the estimator, and low-rank tangents in JVPs.

Directions.  For a matrix parameter W (m x n) the direction is
V = A B^T / sqrt(r), A (m x r) and B (n x r) with iid entries of mean 0,
variance 1 and fourth moment kappa (normal: kappa = 3; Rademacher: kappa = 1).
E[vec V vec V^T] = I, so g = (grad f . V) V is unbiased, as with a dense v.

Variance of one direction.  Write V = (1/sqrt r) sum_k a_k b_k^T, so
d = G . V = (1/sqrt r) sum_k s_k with s_k = a_k^T G b_k, and
V_ij = (1/sqrt r) sum_k t_k with t_k = a_ki b_kj; the pairs (s_k, t_k) are iid
over k, E s^2 = |G|^2, E t^2 = 1, E s t = G_ij.  In E[d^2 V_ij^2] only the
terms whose rank indices pair up survive: r(r - 1)(|G|^2 + 2 G_ij^2) from
two distinct components and r E[s^2 t^2] from one, with
E[s^2 t^2] = |G|^2 + (kappa - 1)(R_i + C_j) + (kappa - 1)^2 G_ij^2
(R_i = sum_q G_iq^2, C_j = sum_p G_pj^2: row and column norms).  Hence

    Var(g_ij) = |G|^2 + G_ij^2 + [(kappa-1)(R_i + C_j) + ((kappa-1)^2 - 2) G_ij^2] / r
      normal:      |G|^2 + G_ij^2 + 2 (R_i + C_j + G_ij^2) / r
      Rademacher:  |G|^2 + (1 - 2/r) G_ij^2
    E|g - G|^2 = sum_ij Var(g_ij)
      normal:      (mn + 1) |G|^2 + 2 (m + n + 1) |G|^2 / r
      Rademacher:  (mn + 1 - 2/r) |G|^2

As r -> oo both tend to the dense normal estimator ((mn + 1)|G|^2); Rademacher
at r = 1 has exactly the second moments of a dense Rademacher direction
((mn - 1)|G|^2, V_ij^2 = 1), and every r > 1 is worse than r = 1 for Rademacher.
Normal factors at r = 1 cost 2(m + n + 1)|G|^2 more than a dense normal v.

Several blocks (some low-rank, some dense; independent directions V_b, one
shared d = sum_b G_b . V_b; S = sum_b |G_b|^2 = |grad f|^2).  Cross terms of
different blocks vanish except E[d_b^2] = |G_b|^2, so in every per-component
formula (low-rank above, dense: Var(g_i) = |a|^2 +- a_i^2) |G|^2 becomes S:

    Var(g_ij) = S + (the block's own terms above, unchanged)
    E|g - grad f|^2 = (N - 1) S + sum_b gamma_b |G_b|^2,   N = sum_b N_b scalars,
    gamma_b = E[d_b^2 |V_b|^2] / |G_b|^2 - N_b:
      dense normal 2, dense Rademacher 0,
      low-rank normal 2 + 2(m_b + n_b + 1)/r, low-rank Rademacher 2 - 2/r.

K directions averaged: every variance above divided by K.

Fourth moments (for the confidence bounds).  g_ij - G_ij = X Y - G_ij with
(X, Y) = (d, V_ij) a sum of independent 2-vectors: r rank components
(s_k, t_k)/sqrt r of W's block, and (c_l v_l, [l is the component] v_l) for the
other blocks' entries.  Their joint moments E[X^p Y^q] (p, q <= 4) are computed
exactly: one rank component's by a tensor quadrature over its m + n factor
entries (5-point Gauss-Hermite, exact up to degree 9 per variable, or the
2-point Rademacher rule), the sum's by the binomial convolution of moment
tables.  ``test_moment_tables_match_closed_forms`` checks the quadrature
against the closed forms above; both were checked beforehand by Monte Carlo
in plain NumPy (benchmarks/lowrank_variance_mc.py: 4e5 draws; 3x2, 2x5, 4x4;
r = 1, 2, 4; both distributions; mixed with a dense block; K = 4).  From them,
as in test_forward_grad.py: sd of a sample mean sqrt(Var/N), of a sample
variance sqrt((mu4 - Var^2)/N), bounds at 6 sd; mean of K:
mu4 = (mu4_1 + 3 (K - 1) Var_1^2) / K^3.  For the total E|g - grad f|^2 the
bound is the sum of the per-component bounds (sd of a sum <= sum of sds).
N = 240k/K draws puts the dense direction's variance more than two bounds away
(except Rademacher r = 1, whose second moments are the dense Rademacher ones;
there the rank-1 structure of g_W is checked instead).

JVPs.  f.jvp with a LowRank(A, B) tangent is compared with the exact JVP in the
dense direction A @ B.T (complex step in plain NumPy, independent of fwdjit),
for every product form; where the tangent is materialized also with fwdjit's
dense JVP itself.  np.matmul is absent: Numba does not compile it.
"""
from math import comb

import numba
import numpy as np
import pytest

import fwdjit
from fwdjit.training.estimator import forward_grad, forward_grad_function

HAVE_LOWRANK = hasattr(fwdjit, "LowRank")
needs_lowrank = pytest.mark.skipif(not HAVE_LOWRANK, reason="low-rank API of issue 13 not merged yet")


# ---------------------------------------------------------------- exact moments
_P = 5          # moment tables E[X^p Y^q], 0 <= p, q < _P


def _rule(dist):
    if dist == "normal":
        x, w = np.polynomial.hermite_e.hermegauss(5)
        return x, w / w.sum()
    return np.array([-1.0, 1.0]), np.array([0.5, 0.5])


def _table(X, Y, w):
    return np.array([[np.sum(w * X ** p * Y ** q) for q in range(_P)] for p in range(_P)])


def _conv(M1, M2):
    """Moment table of (X1 + X2, Y1 + Y2), the pairs independent."""
    M = np.zeros((_P, _P))
    for p in range(_P):
        for q in range(_P):
            M[p, q] = sum(comb(p, a) * comb(q, b) * M1[a, b] * M2[p - a, q - b]
                          for a in range(p + 1) for b in range(q + 1))
    return M


def _lowrank_table(G, r, dist, ij):
    """(G . V, V_ij) for V = A B^T / sqrt r; ij None: (G . V, 0)."""
    m, n = G.shape
    x, w = _rule(dist)
    pts = np.stack(np.meshgrid(*([x] * (m + n)), indexing="ij"), -1).reshape(-1, m + n)
    wts = np.prod(np.stack(np.meshgrid(*([w] * (m + n)), indexing="ij"), -1).reshape(-1, m + n), axis=1)
    a, b = pts[:, :m], pts[:, m:]
    s = np.einsum("sm,mn,sn->s", a, G, b) / np.sqrt(r)
    t = a[:, ij[0]] * b[:, ij[1]] / np.sqrt(r) if ij is not None else 0 * s
    one = _table(s, t, wts)
    M = one
    for _ in range(r - 1):
        M = _conv(M, one)
    return M


def _dense_table(c, dist, i):
    """(c . v, v_i) for a dense v; i None: (c . v, 0)."""
    x, w = _rule(dist)
    M = np.zeros((_P, _P))
    M[0, 0] = 1.0
    for l, cl in enumerate(c):
        M = _conv(M, _table(cl * x, x if l == i else 0 * x, w))
    return M


def _central(M, mu):
    """E(XY - mu)^2 and E(XY - mu)^4 from the table of (X, Y)."""
    return (M[2, 2] - 2 * mu * M[1, 1] + mu ** 2,
            sum(comb(4, k) * M[k, k] * (-mu) ** (4 - k) for k in range(5)))


def exact_moments(G, c, r, dist, K):
    """Per component of (vec G, c): mean, Var and fourth central moment of g averaged over K
    directions, W's block low-rank (rank r), c's block dense."""
    mean, m2, m4 = [], [], []
    MW, Mc = _lowrank_table(G, r, dist, None), _dense_table(c, dist, None)
    for i in range(G.shape[0]):
        for j in range(G.shape[1]):
            M = _conv(_lowrank_table(G, r, dist, (i, j)), Mc)
            mean.append(M[1, 1])
            m2.append(_central(M, G[i, j])[0])
            m4.append(_central(M, G[i, j])[1])
    for l in range(c.size):
        M = _conv(MW, _dense_table(c, dist, l))
        mean.append(M[1, 1])
        m2.append(_central(M, c[l])[0])
        m4.append(_central(M, c[l])[1])
    m2, m4 = np.array(m2), np.array(m4)
    return np.array(mean), m2 / K, (m4 + 3 * (K - 1) * m2 ** 2) / K ** 3


# ---------------------------------------------------------------- closed forms
def lowrank_var(G, r, dist, S):
    """Var(g_ij) of one direction for a low-rank block G; S = |grad f|^2 over all blocks."""
    k1 = 2.0 if dist == "normal" else 0.0            # kappa - 1
    R = (G * G).sum(axis=1)[:, None]
    C = (G * G).sum(axis=0)[None, :]
    return S + G ** 2 + (k1 * (R + C) + (k1 ** 2 - 2) * G ** 2) / r


def dense_var(c, dist, S):
    return S + (1 if dist == "normal" else -1) * c ** 2


def gamma(kind, dist, shape=None, r=None):
    if kind == "dense":
        return 2.0 if dist == "normal" else 0.0
    m, n = shape
    return 2 + 2 * (m + n + 1) / r if dist == "normal" else 2 - 2 / r


def total_var(blocks, K):
    """E|g - grad f|^2 for blocks [(grad_b, gamma_b)]."""
    N = sum(g.size for g, _ in blocks)
    S = sum(np.sum(g * g) for g, _ in blocks)
    return ((N - 1) * S + sum(gm * np.sum(g * g) for g, gm in blocks)) / K


# ---------------------------------------------------------------- a loss
PM = np.array([[0.5, -1.0], [2.0, 0.3], [-0.7, 1.1]])
YV = np.array([1.2, -0.4])
QV = np.array([0.3, -0.5, 0.8])


def bilin(W, x):
    # grad_W = outer(x, YV) + PM,  grad_x = W @ YV + 2 QV x
    return x @ W @ YV + np.sum(PM * W) + np.sum(QV * x * x)


W0 = np.array([[0.4, -1.3], [0.9, 0.2], [-0.6, 1.5]])
XV0 = np.array([1.1, -0.8, 0.5])


def bilin_grad(W, x):
    return np.outer(x, YV) + PM, W @ YV + 2 * QV * x


@numba.njit
def _draws(fg, W, x, n, seed0):
    m, k = W.shape
    out = np.empty((n, m * k + x.size))
    for s in range(n):
        _, (gW, gx) = fg(W, x, seed0 + s)
        for i in range(m):
            for j in range(k):
                out[s, i * k + j] = gW[i, j]
        for i in range(x.size):
            out[s, m * k + i] = gx[i]
    return out


def test_moment_tables_match_closed_forms():
    """The exact (quadrature) moments agree with the closed forms, for shapes and ranks beyond the tests'."""
    rs = np.random.default_rng(5)
    for (m, n), r in (((3, 2), 1), ((2, 3), 2), ((1, 4), 3), ((3, 2), 4)):
        G = rs.standard_normal((m, n))
        c = rs.standard_normal(2)
        S = np.sum(G * G) + c @ c
        for dist in ("normal", "rademacher"):
            mean, var, mu4 = exact_moments(G, c, r, dist, 1)
            np.testing.assert_allclose(mean, np.concatenate([G.ravel(), c]), atol=1e-12)
            expect = np.concatenate([lowrank_var(G, r, dist, S).ravel(), dense_var(c, dist, S)])
            np.testing.assert_allclose(var, expect, rtol=1e-12)
            total = total_var([(G, gamma("lowrank", dist, G.shape, r)), (c, gamma("dense", dist))], 1)
            assert np.isclose(var.sum(), total, rtol=1e-12)
            assert np.all(mu4 >= var ** 2)
    # r = 1 Rademacher has the dense Rademacher direction's second moments
    G = rs.standard_normal((3, 4))
    assert np.allclose(lowrank_var(G, 1, "rademacher", np.sum(G * G)), dense_var(G, "rademacher", np.sum(G * G)))


def _alternatives(GW, gx, K):
    """E|g - grad f|^2 of the other direction schemes (low-rank r = 1, 3 and dense; both distributions)."""
    out = {}
    for d2 in ("normal", "rademacher"):
        for r2 in (1, 3):
            out[d2, r2] = total_var([(GW, gamma("lowrank", d2, GW.shape, r2)), (gx, gamma("dense", d2))], K)
        out[d2, "dense"] = total_var([(GW, gamma("dense", d2)), (gx, gamma("dense", d2))], K)
    return out


@needs_lowrank
@pytest.mark.parametrize("dist", ["normal", "rademacher"])
@pytest.mark.parametrize("r", [1, 3])
@pytest.mark.parametrize("K", [1, 4])
def test_lowrank_unbiased_and_variance(dist, r, K):
    """W (3 x 2) low-rank, x (3,) dense, one shared d: mean, per-component variance, total."""
    N = 240_000 // K             # the same number of directions drawn in every case
    fg = forward_grad_function(bilin, wrt=(0, 1), n_directions=K, distribution=dist,
                               directions="lowrank", rank=r)
    draws = _draws(fg, W0, XV0, N, 777)
    GW, gx = bilin_grad(W0, XV0)
    a = np.concatenate([GW.ravel(), gx])
    _, var, mu4 = exact_moments(GW, gx, r, dist, K)
    S = a @ a
    assert np.allclose(var, np.concatenate([lowrank_var(GW, r, dist, S).ravel(), dense_var(gx, dist, S)]) / K)
    mean = draws.mean(axis=0)
    sd_mean = np.sqrt(var / N)
    assert np.all(np.abs(mean - a) <= 6 * sd_mean), (mean, a, sd_mean)
    svar = ((draws - a) ** 2).mean(axis=0)          # the mean is known: E(g_i - a_i)^2 = Var(g_i)
    tol = 6 * np.sqrt((mu4 - var ** 2) / N)
    assert np.all(np.abs(svar - var) <= tol), (svar, var, tol)
    # total; sd(sum) <= sum(sd) (Minkowski), so tol.sum() is a valid 6-sd bound
    total = ((draws - a) ** 2).sum(axis=1).mean()
    expect = total_var([(GW, gamma("lowrank", dist, GW.shape, r)), (gx, gamma("dense", dist))], K)
    assert np.isclose(expect, var.sum())
    assert abs(total - expect) <= tol.sum(), (total, expect, tol.sum())
    # power: every scheme whose variance is more than 2 bounds away is rejected (implied by the
    # bound above), and that includes the dense direction of the same distribution, except for
    # Rademacher r = 1, which has exactly its second moments (the rank check below tells them apart)
    alts = _alternatives(GW, gx, K)
    far = {k for k, alt in alts.items() if abs(alt - expect) > 2 * tol.sum()}
    assert (dist, "dense") in far or (dist, r) == ("rademacher", 1), (alts, expect, tol.sum())
    for k in far:
        assert abs(total - alts[k]) > tol.sum(), (k, alts[k], total, tol.sum())
    if K == 1 and r == 1:
        # g_W = d a b^T: rank 1 (all 2 x 2 minors vanish); Rademacher: |g_ij| = |d| for all ij
        gW = draws[:, :GW.size].reshape(-1, *GW.shape)
        scale = np.abs(gW).max(axis=(1, 2)) + 1e-300
        for (i, k) in ((0, 1), (0, 2), (1, 2)):
            minor = gW[:, i, 0] * gW[:, k, 1] - gW[:, i, 1] * gW[:, k, 0]
            assert np.all(np.abs(minor) <= 1e-12 * scale ** 2)
        if dist == "rademacher":
            assert np.allclose(np.abs(gW), np.abs(gW[:, :1, :1]), rtol=1e-12)


@needs_lowrank
def test_lowrank_estimate_structure():
    """K = 1 from Python: g_W = d A B^T / sqrt r has rank <= r, g . grad f = d^2 >= 0, a seed repeats."""
    GW, gx = bilin_grad(W0, XV0)
    for seed in range(10):
        _, (gW, g1) = forward_grad(bilin, (W0, XV0), wrt=(0, 1), seed=seed, directions="lowrank", rank=1)
        assert np.linalg.matrix_rank(gW, tol=1e-10 * max(1.0, np.abs(gW).max())) <= 1
        assert np.sum(gW * GW) + g1 @ gx >= 0
    r1 = forward_grad(bilin, (W0, XV0), wrt=(0, 1), seed=3, directions="lowrank", rank=1)
    r2 = forward_grad(bilin, (W0, XV0), wrt=(0, 1), seed=3, directions="lowrank", rank=1)
    assert all(np.array_equal(p, q) for p, q in zip(r1[1], r2[1]))


# ---------------------------------------------------------------- low-rank tangents in JVPs
def prod_forms(W, X, x, y, Z):
    # W (m, n), X (k, m), x (n,), y (m,), Z (n, p); W only read: its tangent may stay factored.
    # (np.matmul is not here: Numba does not compile it, so neither primal nor JVP exists.)
    h = np.tanh(X @ W)
    return (X @ W,                 # 0  matrix @ W
            np.dot(X, W),          # 1
            W @ x,                 # 2  W @ vector
            np.dot(W, x),          # 3
            W.T @ y,               # 4  W.T @ vector
            x @ W.T,               # 5  vector @ W.T
            y @ W,                 # 6  vector @ W
            np.dot(y, W),          # 7
            W @ Z,                 # 8  W @ matrix
            Z.T @ W.T,             # 9  matrix @ W.T
            W.T @ X.T,             # 10 W.T @ matrix
            np.dot(W.T, y),        # 11
            np.sum(W * W),         # 12 elementwise: materialized
            h @ W.T,               # 13 W in two products (h depends on W)
            W.T @ W,               # 14 W on both sides
            (-W) @ x)              # 15 negated


def _user_quad(W, x):
    u = W @ x
    return np.sum(u * u)


def passed_and_reassigned(W, X, x, y, Z):
    # W's tangent is materialized here (see fwdjit.rules.lowrank): still the same JVP
    s = _user_quad(W, x)           # W passed to another user function
    W = 2.0 * W + 1.0              # W reassigned
    return s, W @ x, X @ W, y @ W


def few_forms(W, X, x, y, Z):
    # factored on either side, transposed, and materialized: the float32 variant in the quick tier
    # (each float32 compilation costs ~10 s of CPU; all forms run in float32 in the exhaustive tier)
    return X @ W, x @ W.T, np.sum(W * W)


def _jvp_inputs(r, seed):
    rs = np.random.default_rng(seed)
    m, n, k, p = 4, 3, 5, 2
    prim = (rs.standard_normal((m, n)), rs.standard_normal((k, m)), rs.standard_normal(n),
            rs.standard_normal(m), rs.standard_normal((n, p)))
    tans = tuple(rs.standard_normal(a.shape) for a in prim[1:])
    return prim, tans, rs.standard_normal((m, r)), rs.standard_normal((n, r))


def _as_tuple(t):
    return t if isinstance(t, tuple) else (t,)


def exact_jvp(func, prim, tans):
    """The JVP by the complex step, in plain NumPy (no fwdjit): exact to rounding for these
    analytic functions (no subtraction), so an independent dense reference."""
    h = 1e-30
    out = func(*(p + 1j * h * t for p, t in zip(prim, tans)))
    return tuple(np.real(o) for o in _as_tuple(out)), tuple(np.imag(o) / h for o in _as_tuple(out))


def _check_close(got, want, dtype, what):
    rtol = 1e-12 if dtype == np.float64 else 3e-5
    got, want = _as_tuple(got), _as_tuple(want)
    assert len(got) == len(want)
    for i, (u, v) in enumerate(zip(got, want)):
        u, v = np.asarray(u), np.asarray(v)
        assert u.dtype == dtype, (what, i, u.dtype)
        assert u.shape == v.shape, (what, i)
        np.testing.assert_allclose(u, v, rtol=rtol, atol=rtol * max(1.0, float(np.abs(v).max())),
                                   err_msg=f"{what}: output {i}")


def _run_lowrank(f, func, dtype, ranks=(1, 3), dense_too=False):
    for r in ranks:
        prim, tans, A, B = _jvp_inputs(r, r)
        dW = A @ B.T
        out_x, tan_x = exact_jvp(func, prim, (dW,) + tans)
        cast = lambda t: tuple(a.astype(dtype) for a in t)   # noqa: E731
        out_l, tan_l = f.jvp(cast(prim), (fwdjit.LowRank(A.astype(dtype), B.astype(dtype)),) + cast(tans))
        _check_close(out_l, out_x, dtype, f"{func.__name__} {np.dtype(dtype).name} primal, r={r}")
        _check_close(tan_l, tan_x, dtype, f"{func.__name__} {np.dtype(dtype).name} low-rank vs exact, r={r}")
        if dense_too:
            _, tan_d = f.jvp(cast(prim), (dW.astype(dtype),) + cast(tans))
            _check_close(tan_l, tan_d, dtype, f"{func.__name__} {np.dtype(dtype).name} low-rank vs dense, r={r}")


@needs_lowrank
def test_lowrank_tangent_products_float64():
    """f.jvp with LowRank(A, B) for W equals the JVP with the dense tangent A @ B.T, every product form.

    The dense reference is the complex-step JVP (plain NumPy, exact to rounding): one
    compilation fewer than fwdjit's dense JVP, which the corpus tests check separately."""
    _run_lowrank(fwdjit.fwdjit(prod_forms), prod_forms, np.float64)


@needs_lowrank
def test_lowrank_tangent_float32_keeps_float32():
    _run_lowrank(fwdjit.fwdjit(few_forms), few_forms, np.float32, ranks=(2,))


@needs_lowrank
@pytest.mark.exhaustive
def test_lowrank_tangent_products_float32():
    _run_lowrank(fwdjit.fwdjit(prod_forms), prod_forms, np.float32)


@needs_lowrank
def test_lowrank_tangent_materialized_equals_dense_jvp():
    """W passed to a user function and reassigned: the tangent is materialized, the JVP is
    still exactly fwdjit's dense one (and the complex step's)."""
    _run_lowrank(fwdjit.fwdjit(passed_and_reassigned), passed_and_reassigned, np.float64, ranks=(2,),
                 dense_too=True)


def layer_products(W, X, x):
    return np.sum(np.tanh(X @ W) @ x)


def layer_elementwise(W, X, x):
    return np.sum(np.tanh(X @ W) @ x) + np.sum(W * W)


@needs_lowrank
def test_lowrank_tangent_source():
    """The generated source keeps the factors in products and forms A @ B.T at most once."""
    import re
    dense_dW = re.compile(r"^\s*dW\s*=", re.M)        # a line that forms the dense tangent of W
    src = fwdjit.fwdjit(layer_products).tangent_source_for((True, True, False), lowrank=(True, False, False))
    assert "X @ dW_A @ dW_B.T" in src, src           # (X @ A) @ B.T: thin products only
    assert not dense_dW.search(src), src
    src = fwdjit.fwdjit(layer_elementwise).tangent_source_for((True, True, False), lowrank=(True, False, False))
    assert len(dense_dW.findall(src)) == 1, src      # materialized once, for W * W
    assert "X @ dW_A @ dW_B.T" in src, src           # the product still uses the factors


# ---------------------------------------------- writes that the factors must not miss
def _w_loop_rows(W, x):
    s = 0.0
    for row in W:                   # rows are views: writing one writes W
        row[0] = 2.0
        s += np.sum(row * x)
    return s + np.sum(x @ W.T)


def _w_view(W, x):
    V = W[0:2]
    V[0, 0] = 3.0
    return np.sum(x @ W.T)


def _w_set_first(M):
    M[0, 0] = 5.0
    return 0.0


def _w_callee(W, x):
    t = _w_set_first(W)
    return np.sum(x @ W.T) + t


def _w_aug(W, x):
    W *= 2.0
    return np.sum(x @ W.T)


def _w_out(W, x):
    np.sin(W, W)
    return np.sum(x @ W.T)


def _w_real(W, x):
    V = W.real                      # an attribute view
    V[0, 0] = 2.0
    return np.sum(x @ W.T)


def _w_tuple(W, x):
    t = (W, x)
    t[0][0, 0] = 2.0
    return np.sum(x @ W.T)


def _w_ifexp(W, x):
    V = W if x[0] > -10.0 else W.T
    V[0, 0] = 2.0
    return np.sum(x @ W.T)


def _w_contig(W, x):
    V = np.ascontiguousarray(W)     # the same array for contiguous input
    V[0, 0] = x[0]
    return np.sum(x @ W.T)


def _w_set_in_tuple(t):
    t[0][0, 0] = 0.0
    return 0.0


def _w_callee_tuple(W, x):
    s = _w_set_in_tuple((W, x))
    return np.sum(x @ W.T) + s


@pytest.mark.exhaustive
@pytest.mark.parametrize("fn", [_w_loop_rows, _w_view, _w_callee, _w_aug, _w_real, _w_tuple, _w_ifexp,
                                _w_contig, _w_callee_tuple])
def test_written_argument_keeps_the_dense_derivative(fn):
    """An argument written in place (through a view, a loop variable, a callee, an augmented
    assignment, an ``out`` argument, an attribute, a tuple, a conditional expression,
    np.ascontiguousarray; found by review, each was once silently wrong) cannot keep its
    factors: the result equals the dense JVP."""
    f = fwdjit.fwdjit(fn)
    r = np.random.default_rng(3)
    W, x = r.standard_normal((3, 4)), r.standard_normal(4)
    A, B = r.standard_normal((3, 2)), r.standard_normal((4, 2))
    low = f.jvp((W.copy(), x), (fwdjit.LowRank(A, B), None))
    dense = f.jvp((W.copy(), x), (A @ B.T, None))
    np.testing.assert_allclose(low, dense, rtol=1e-13, atol=1e-13)


def _bias_max(b, X):
    return np.sum(np.maximum(b, X))          # select with a condition of higher rank than b


def test_select_broadcast_to_a_higher_rank():
    f = fwdjit.fwdjit(_bias_max)
    r = np.random.default_rng(5)
    b, X, db = r.standard_normal(4), r.standard_normal((3, 4)), r.standard_normal(4)
    _, d = f.jvp((b, X), (db, None))
    expect = np.sum(np.where(b >= X, db, 0.0))
    np.testing.assert_allclose(d, expect, rtol=1e-13)


def test_ufunc_output_argument_is_refused_with_its_location():
    """``np.sin(W, W)`` wrote sin(W) into W while the tangent kept dW (a silently wrong JVP, dense
    or low-rank): it is refused at transform time, located, with a hint."""
    f = fwdjit.fwdjit(_w_out)
    W, x = np.ones((3, 4)), np.ones(4)
    with pytest.raises(fwdjit.UnsupportedCall, match=r"np\.sin with an output argument") as e:
        f.jvp((W, x), (np.ones((3, 4)), None))
    assert "test_forward_grad_lowrank.py" in str(e.value) and "y = np.sin(...)" in str(e.value)
