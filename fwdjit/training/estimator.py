"""Forward gradients (Baydin et al. 2022, "Gradients without Backpropagation").

``g = (grad f . v) v`` with ``v`` random, zero mean and identity covariance,
is an unbiased estimate of ``grad f`` that costs one forward-mode pass (one
JVP): no reverse pass, no tape.  ``forward_grad`` computes it for chosen
arguments of a loss; ``forward_grad_function`` returns the same computation
as a Numba dispatcher that user ``@njit`` code (a training loop) can call.

Directions come from the counter-based generator in :mod:`fwdjit.training.rng`: one
independent ``v`` per differentiated argument, regenerated from
``(seed, direction index, argument index)``, so a call is reproduced exactly
by its seed.

Variance (``n`` = total number of differentiated scalars, ``K`` directions):
normal ``v``: ``E|g - grad f|^2 = (n + 1) |grad f|^2 / K`` and
``Var(g_i) = (|grad f|^2 + (d_i f)^2) / K``; Rademacher ``v``:
``(n - 1) |grad f|^2 / K`` and ``Var(g_i) = (|grad f|^2 - (d_i f)^2) / K``.

Low-rank directions (``directions="lowrank"``): a 2-d argument ``W`` (m x n)
gets ``V = A B^T / sqrt(r)`` (the JVP keeps it factored, :mod:`fwdjit.rules.lowrank`).
For one matrix ``G = grad_W f``: normal factors
``E|g - G|^2 = (mn + 1)|G|^2 + 2(m + n + 1)|G|^2 / r``, Rademacher factors
``(mn + 1 - 2/r)|G|^2`` (rank 1: exactly a dense Rademacher direction's); with
several arguments ``(N - 1)|grad f|^2 + sum_b gamma_b |G_b|^2``, gamma: dense
normal 2, dense Rademacher 0, low-rank normal ``2 + 2(m_b + n_b + 1)/r``,
low-rank Rademacher ``2 - 2/r``; all divided by K (derivation and tests:
tests/test_forward_grad_lowrank.py).
"""
from __future__ import annotations

import threading

import numba
import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from . import rng
from .._version import __version__
from ..compiler.emit import Source
from ..api import as_fwdjit, numpy_scalars
from ..targets.cpu.entry import jvp_entry
from .blas import compiled_call
from ..targets.base import cached
from ..targets.numba_errors import located_compile_errors
from ..compiler.desugar import fill_defaults
from ..targets.cache import HEADER, guard_cache, load_module
from ..derivatives import scalar_like
from ..errors import FwdjitError
from ..rules.lowrank import LowRank

__all__ = ["forward_grad", "forward_grad_function", "as_fwdjit", "normalize_wrt"]

_LOCK = threading.RLock()
_CACHE: dict = {}


def normalize_wrt(wrt, nparams, name="loss"):
    """``wrt`` as a tuple of distinct argument indices (negative ones counted from the end)."""
    single = isinstance(wrt, (int, np.integer))
    idx = (int(wrt),) if single else tuple(int(i) for i in wrt)
    if not idx:
        raise FwdjitError("wrt must name at least one argument")
    out = []
    for i in idx:
        j = i + nparams if i < 0 else i
        if not 0 <= j < nparams:
            raise FwdjitError(f"wrt index {i} out of range: {name} takes {nparams} arguments")
        if j in out:
            raise FwdjitError(f"wrt names argument {j} twice")
        out.append(j)
    return tuple(out), single


# ------------------------------------------------------------------ helpers
# Called from generated code; each works on arrays (in place) and on float scalars.

def new_direction(x):
    """Storage for a direction shaped like ``x``."""


@overload(new_direction)
def _ov_new_direction(x):
    if isinstance(x, types.Array) and isinstance(x.dtype, types.Float):
        return lambda x: np.empty(x.shape, x.dtype)
    if isinstance(x, types.Float):
        ty = x
        return lambda x: ty(0)
    raise TypingError(f"fwdjit.forward_grad: a differentiated argument must be a float array or a float, "
                      f"given {x}")


def new_lowrank_direction(x, rank):
    """Storage for a direction of a low-rank run: factors ``LowRank(A, B)`` for a 2-d float
    array (``A``: m x rank, ``B``: n x rank), dense storage for anything else."""


@overload(new_lowrank_direction)
def _ov_new_lowrank_direction(x, rank):
    if isinstance(x, types.Array) and x.ndim == 2 and isinstance(x.dtype, types.Float):
        def impl(x, rank):
            return LowRank(np.empty((x.shape[0], rank), x.dtype), np.empty((x.shape[1], rank), x.dtype))
        return impl
    return lambda x, rank: new_direction(x)


def _is_lowrank(t):
    return isinstance(t, types.BaseNamedTuple) and getattr(t, "instance_class", None) is LowRank


def draw(v, key, dist):
    """Fill ``v`` with a direction (arrays and low-rank factors, in place) or return a new random float.

    Low-rank: ``A`` and ``B`` get independent unit-variance entries from two sub-streams of
    ``key`` and ``A`` is scaled by ``1/sqrt(r)``, so ``V = A @ B.T`` has
    ``E[vec V vec V^T] = I``, as a dense direction has.
    """


@overload(draw)
def _ov_draw(v, key, dist):
    if _is_lowrank(v):
        def impl_lowrank(v, key, dist):
            a, b = v
            rng.draw_factors(a, b, key, dist)
            return v
        return impl_lowrank
    if isinstance(v, types.Array):
        def impl(v, key, dist):
            rng.fill_direction(v.reshape(-1), key, dist)
            return v
        return impl
    ty = v

    def impl_scalar(v, key, dist):
        if dist == rng.RADEMACHER:
            return ty(rng.rademacher_at(key, 0))
        return ty(rng.normal_at(key, 0, 2))
    return impl_scalar


def zeros_like(x):
    """Zero accumulator shaped like ``x``."""


@overload(zeros_like)
def _ov_zeros_like(x):
    if isinstance(x, types.Array):
        return lambda x: np.zeros(x.shape, x.dtype)
    ty = x
    return lambda x: ty(0)


def axpy(g, c, v):
    """``g + c * v`` (in place for arrays)."""


@overload(axpy)
def _ov_axpy(g, c, v):
    if _is_lowrank(v):
        def impl_lowrank(g, c, v):      # g += c * A @ B.T, one rank-r pass over g
            a, b = v
            for i in range(g.shape[0]):
                for k in range(a.shape[1]):
                    ca = c * a[i, k]
                    for j in range(g.shape[1]):
                        g[i, j] += ca * b[j, k]
            return g
        return impl_lowrank
    if isinstance(g, types.Array):
        def impl(g, c, v):
            gf = g.reshape(-1)
            vf = v.reshape(-1)
            for i in range(gf.size):
                gf[i] += c * vf[i]
            return g
        return impl
    ty = g
    return lambda g, c, v: ty(g + c * v)


def scale(g, s):
    """``g * s`` (in place for arrays)."""


@overload(scale)
def _ov_scale(g, s):
    if isinstance(g, types.Array):
        def impl(g, s):
            gf = g.reshape(-1)
            for i in range(gf.size):
                gf[i] *= s
            return g
        return impl
    ty = g
    return lambda g, s: ty(g * s)


def scalar_loss(d):
    """The directional derivative, checked to be a scalar."""


@overload(scalar_loss)
def _ov_scalar_loss(d):
    if isinstance(d, (types.Float, types.Integer)):
        return lambda d: d
    raise TypingError(f"fwdjit.forward_grad: the loss must return one float scalar; its tangent is {d}")


HELPERS = {"fj_new_direction": new_direction, "fj_new_lowrank_direction": new_lowrank_direction, "fj_draw": draw, "fj_zeros_like": zeros_like, "fj_axpy": axpy,
           "fj_scale": scale, "fj_scalar_loss": scalar_loss, "fj_seed_key": rng.seed_key,
           "fj_derive": rng.derive}


# ------------------------------------------------------------ generation
def _source(name, nparams, wrt, n_directions, dist, rank=0):
    """Source of ``name(a0, ..., seed) -> (value, (g...))`` for the given configuration.

    ``rank`` > 0: low-rank directions for 2-d arguments, and ``jf`` is the JVP entry that
    takes one slot per argument (None, a dense tangent or a ``LowRank``)."""
    args = [f"a{i}" for i in range(nparams)]
    active = sorted(wrt)                     # tangent order of the JVP: argument order
    vs = {i: f"v{i}" for i in active}
    gs = {i: f"g{i}" for i in active}
    if rank:
        call = f"jf({', '.join(args + [vs[i] if i in vs else 'None' for i in range(nparams)])})"
    else:
        call = f"jf({', '.join(args + [vs[i] for i in active])})"
    kind = f"rank-{rank} factors A @ B.T / sqrt({rank}) for matrices" if rank else "dense"
    src = Source()
    with src.block(f"def {name}({', '.join(args + ['seed'])}):"):
        src(f"# forward gradient of the loss in {n_directions} random direction(s), "
            f"{'normal' if dist == rng.NORMAL else 'rademacher'} components, {kind}",
            "base = fj_seed_key(seed)")
        for i in active:
            src(f"{vs[i]} = fj_new_lowrank_direction(a{i}, {rank})" if rank else f"{vs[i]} = fj_new_direction(a{i})",
                f"{gs[i]} = fj_zeros_like(a{i})")

        def one_direction(k, value):
            for i in active:
                src(f"{vs[i]} = fj_draw({vs[i]}, fj_derive(base, {k}, {i}), {dist})")
            src(f"{value}, d = {call}", "d = fj_scalar_loss(d)")
            for i in active:
                src(f"{gs[i]} = fj_axpy({gs[i]}, d, {vs[i]})")

        one_direction(0, "value")
        if n_directions > 1:
            with src.block(f"for k in range(1, {n_directions}):"):
                one_direction("k", "_")
            for i in active:
                src(f"{gs[i]} = fj_scale({gs[i]}, {1.0 / n_directions!r})")
        out = ", ".join(gs[i] for i in wrt) + ("," if len(wrt) == 1 else "")
        src(f"return value, ({out})")
    return src.text()


def direction_rank(directions, rank):
    """``(directions, rank)`` checked: the rank of low-rank directions, 0 for dense ones."""
    if directions == "dense":
        if rank != 1:
            raise FwdjitError(f"rank={rank!r} is for directions='lowrank'; directions='dense' has no rank")
        return 0
    if directions != "lowrank":
        raise FwdjitError(f"directions must be 'dense' or 'lowrank', given {directions!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise FwdjitError(f"rank must be an int >= 1 for directions='lowrank', given {rank!r}")
    return int(rank)


def forward_grad_function(loss, wrt=0, n_directions=1, distribution="normal", directions="dense", rank=1):
    """A Numba dispatcher ``fg(*args, seed) -> (value, grads)`` computing forward gradients.

    ``grads`` is a tuple with one estimate per entry of ``wrt`` (in ``wrt``'s
    order), each ``(grad f . v) v`` averaged over ``n_directions`` independent
    directions, shaped and typed like its argument.  ``seed`` is an int; the
    directions are a pure function of it.  Callable from ``@numba.njit`` code.
    The dispatcher is built once per configuration.

    ``directions="lowrank"``: the direction of each 2-d float argument is
    ``V = A @ B.T / sqrt(rank)`` with ``A`` (m x rank) and ``B`` (n x rank) of
    independent entries from ``distribution``; other arguments get dense
    directions.  The JVP keeps ``V`` factored in products
    (:mod:`fwdjit.rules.lowrank`), so it costs about the primal's products plus one
    per layer, and only ``rank * (m + n)`` numbers are drawn per matrix.  The
    estimate stays unbiased (``E[vec V vec V^T] = I``); its variance is larger
    than a dense direction's (see the module docstring).
    """
    fj = as_fwdjit(loss)
    wrt, _ = normalize_wrt(wrt, fj._nparams, fj.name)
    n_directions = int(n_directions)
    if n_directions < 1:
        raise FwdjitError("n_directions must be >= 1")
    dist = rng.distribution_code(distribution)
    rank = direction_rank(directions, rank)
    return cached(_CACHE, (fj, wrt, n_directions, dist, rank),
                  lambda: _compile_estimator(fj, wrt, n_directions, dist, rank), _LOCK)


def _compile_estimator(fj, wrt, n_directions, dist, rank):
    """Write the estimator's module to the cache folder and ``njit`` it (made once per settings)."""
    mask = tuple(i in wrt for i in range(fj._nparams))
    # low-rank: the JVP entry, which picks the JVP compiled for the tangents' forms when typed
    jf = jvp_entry(fj).dispatcher if rank else fj.tangent_function(mask)
    name = f"{fj.name}_fwdgrad" + (f"_lowrank{rank}" if rank else "")
    text = (HEADER.format(version=__version__, qualname=fj.info.qualname,
                          where=f"{fj.info.filename}:{fj.info.tree.lineno}")
            + "\n\n" + _source(name, fj._nparams, wrt, n_directions, dist, rank))
    ns = dict(HELPERS)
    ns["jf"] = jf
    extra = "fwdgrad:" + getattr(jf, "_fwdjit_key", fj.deep_key())
    mod, key, _ = load_module(name, text, ns, extra)
    disp = guard_cache(numba.njit(cache=True, nogil=True)(getattr(mod, name)))
    disp._fwdjit_key = key
    disp._fwdjit_source = text
    return disp


def forward_grad(loss, args, wrt=0, n_directions=1, distribution="normal", seed=0, directions="dense", rank=1):
    """``(value, grads)``: the loss at ``args`` and forward-gradient estimates.

    Parameters
    ----------
    loss : an @fwdjit function or a plain Python function returning a scalar.
    args : tuple of the loss's arguments.
    wrt : int or tuple of ints, the differentiated arguments (float arrays or floats).
    n_directions : number of independent directions averaged (variance / K).
    distribution : ``"normal"`` (the paper: v ~ N(0, I)) or ``"rademacher"``
        (v_i = +-1; the lowest variance among independent distributions).
    seed : int; the same seed gives the same directions.
    directions : ``"dense"`` (default) or ``"lowrank"``: 2-d arguments get
        directions ``A @ B.T / sqrt(rank)`` that the JVP keeps factored
        (cheaper; unbiased; more variance), see :func:`forward_grad_function`.
    rank : the rank r of low-rank directions.

    Returns ``(value, grads)``; ``grads`` is a tuple aligned with ``wrt``, or a
    single estimate when ``wrt`` is an int.

    >>> import numpy as np
    >>> def f(x):
    ...     return np.sum(x * x)
    >>> value, g = forward_grad(f, (np.ones(3),), wrt=0, seed=1)
    >>> float(value), g.shape
    (3.0, (3,))
    """
    fj = as_fwdjit(loss)
    if not isinstance(args, tuple):
        args = tuple(args) if isinstance(args, list) else (args,)
    args = fill_defaults(fj.params, fj.info.defaults, args)     # omitted defaulted arguments
    if len(args) != fj._nparams:
        raise FwdjitError(f"{fj.name} takes {fj._nparams} arguments ({', '.join(fj.params)}); given {len(args)}")
    idx, single = normalize_wrt(wrt, fj._nparams, fj.name)
    for i in idx:
        a = args[i]
        ok = (isinstance(a, np.ndarray) and a.dtype.kind == "f") or \
            (isinstance(a, (float, np.floating)) and not isinstance(a, bool))
        if not ok:
            raise FwdjitError(f"forward_grad: argument {i} ({fj.params[i]}) must be a float array or a float to be "
                              f"differentiated, given {type(a).__name__}"
                              + (f" of dtype {a.dtype}" if isinstance(a, np.ndarray) else ""))
    disp = forward_grad_function(fj, idx, n_directions, distribution, directions, rank)
    call = args + (int(seed) & 0x7FFFFFFFFFFFFFFF,)
    with compiled_call(), located_compile_errors(fj, args):   # BLAS threads as fwdjit.training.blas says
        out = disp(*call)
    value, grads = numpy_scalars(disp, call, out)      # float32 results as np.float32, as NumPy
    # a scalar argument's estimate is a NumPy scalar of its dtype, as fwdjit.grad returns
    grads = tuple(scalar_like(g, args[i]) for g, i in zip(grads, idx))
    return (value, grads[0]) if single else (value, grads)
