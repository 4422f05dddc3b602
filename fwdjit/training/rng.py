"""Counter-based random numbers for Numba code (directions of forward gradients).

Every number is a pure function of a 64-bit *key* and a position: the
``j``-th pair of normals under ``key`` is ``normal_pair(key, j)``.  Nothing is
stored between calls, so the direction of step ``s`` can be regenerated from
``(seed, s)`` at any time, in any order and in any chunking of a training
run, and a run is reproduced exactly by its seed.

* Hash: the SplitMix64 finaliser of ``key + j * golden`` (the SplitMix64
  generator evaluated at position ``j``; it passes BigCrush as a sequence).
  One 64-bit hash gives one pair of normals or 64 Rademacher signs.
* Normals: Box-Muller in float32 with polynomial ``log`` (Cephes ``logf``,
  error < 1e-6 absolute on (0, 1]) and ``sin``/``cos`` on a quarter turn
  (Cephes ``sinf``/``cosf``) rotated by two random bits.  No libm calls, so
  LLVM vectorises the loop (8 lanes with AVX2/AVX-512).  The radius uses 31
  random bits: |z| <= 6.66, a truncation of the tails at probability 3e-11.
  Compiled without fastmath, so results are bit-identical wherever inlined.
  Values are float32 numbers; written into a float64 array they are exact
  float32 values (the distribution is N(0, 1) to float32 resolution).
* Rademacher: one random bit per element, +1 or -1.

Layout: pairs are written in blocks of ``2 * BLOCK`` elements: pair ``j =
b * BLOCK + k`` of block ``b`` goes to elements ``2*BLOCK*b + k`` and
``2*BLOCK*b + BLOCK + k`` (both stores contiguous, so they vectorise); the tail
after the last full block takes pairs in order.  ``fill_normal`` and
``normal_at`` agree on this layout.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["wide_vectors", "seed_key", "derive", "mix64", "normal_pair", "fill_normal", "fill_rademacher",
           "fill_direction", "normal_at", "rademacher_at", "uniform01", "permutation", "NORMAL", "RADEMACHER", "BLOCK",
           "distribution_code"]

U64 = np.uint64
F32 = np.float32
GOLDEN = U64(0x9E3779B97F4A7C15)
_M1 = U64(0xBF58476D1CE4E5B9)
_M2 = U64(0x94D049BB133111EB)
BLOCK = 64          # pairs per block (see the module docstring)
NORMAL = 0
RADEMACHER = 1

_OPTS = dict(cache=True, nogil=True)
# No fastmath, not even FMA contraction: every operation is rounded as IEEE says, so the same
# (key, position) gives bit-identical numbers in any loop that inlines normal_pair, vectorised or
# not (the fused update-and-resample kernels of fwdjit.train rely on it).  Contraction would make
# the generator ~25% faster.
_FAST = dict(cache=True, nogil=True)


def distribution_code(name):
    """``"normal"`` -> NORMAL, ``"rademacher"`` -> RADEMACHER."""
    key = str(name).lower()
    if key in ("normal", "gaussian"):
        return NORMAL
    if key in ("rademacher", "sign"):
        return RADEMACHER
    raise ValueError(f"distribution must be 'normal' or 'rademacher', given {name!r}")


@intrinsic
def _f32_bits(typingctx, x):
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return sig, codegen


@intrinsic
def _bits_f32(typingctx, x):
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return sig, codegen


@intrinsic
def wide_vectors(typingctx):
    """Ask LLVM for 512-bit vectors in the calling function (call it first thing).

    LLVM prefers 256-bit vectors on AVX-512 CPUs (Skylake-X to Sapphire Rapids);
    for the generator loops 512 bits are ~30% faster and give bit-identical
    results (the same IEEE operations per lane).  Adds the function attribute
    ``"prefer-vector-width"="512"``, which CPUs without AVX-512 ignore.
    """
    sig = types.none()

    def codegen(context, builder, signature, args):
        try:   # llvmlite has no API for string attributes; its attribute set prints them verbatim
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except Exception:
            pass
        return context.get_dummy_value()
    return sig, codegen


@numba.njit(inline="always", **_OPTS)
def mix64(z):
    """SplitMix64 finaliser (a bijection of uint64 with full avalanche)."""
    z = U64(z)
    z = (z ^ (z >> U64(30))) * _M1
    z = (z ^ (z >> U64(27))) * _M2
    return z ^ (z >> U64(31))


@numba.njit(**_OPTS)
def seed_key(seed):
    """The base key of a user seed (an int64; keys are int64 bit patterns of uint64 hashes)."""
    return np.int64(mix64(U64(np.int64(seed) & np.int64(0x7FFFFFFFFFFFFFFF)) * GOLDEN + U64(0x632BE59BD9B4E019)))


@numba.njit(**_OPTS)
def derive(key, a, b):
    """A key for sub-stream ``(a, b)`` of ``key`` (e.g. step, parameter)."""
    key = U64(key)
    k = mix64(key ^ (U64(a) * GOLDEN + U64(0xD1B54A32D192ED03)))
    return np.int64(mix64(k ^ (U64(b) * _M1 + U64(0x8CB92BA72F3D8DD7))))


@numba.njit(inline="always", **_FAST)
def _logf(u):
    """log(u) for float32 u > 0 (Cephes logf, without the checks)."""
    bits = _f32_bits(u)
    e = np.int32(bits >> np.uint32(23)) - np.int32(127)
    m = _bits_f32(np.uint32((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)))   # [1, 2)
    big = m > F32(1.4142135)
    m = m * F32(0.5) if big else m
    e = e + np.int32(1) if big else e
    x = m - F32(1.0)
    z = x * x
    y = ((((((((F32(7.0376836292e-2) * x - F32(1.1514610310e-1)) * x + F32(1.1676998740e-1)) * x
               - F32(1.2420140846e-1)) * x + F32(1.4249322787e-1)) * x - F32(1.6668057665e-1)) * x
            + F32(2.0000714765e-1)) * x - F32(2.4999993993e-1)) * x + F32(3.3333331174e-1)) * x * z
    fe = F32(e)
    y = y + F32(-2.12194440e-4) * fe
    y = y - F32(0.5) * z
    return x + y + F32(0.693359375) * fe


@numba.njit(inline="always", **_FAST)
def normal_pair(key, j):
    """The ``j``-th pair of independent N(0, 1) float32 numbers under ``key``."""
    h = mix64(U64(key) + U64(j) * GOLDEN)
    a = np.int64(h >> U64(33))                                          # 31 bits
    u1 = (F32(a) + F32(0.5)) * F32(4.656612873077393e-10)               # (0, 1)
    r = np.sqrt(F32(-2.0) * _logf(u1))
    b = np.uint32(h & U64(0xFFFFFFFF))
    q = b >> np.uint32(30)                                              # quadrant
    phi = (F32(np.int32(b & np.uint32(0x3FFFFFFF))) * F32(9.313225746154785e-10) - F32(0.5)) \
        * F32(1.5707963267948966)                                       # [-pi/4, pi/4)
    z = phi * phi
    s = ((F32(-1.9515295891e-4) * z + F32(8.3321608736e-3)) * z - F32(1.6666654611e-1)) * z * phi + phi
    c = ((F32(2.443315711809948e-5) * z - F32(1.388731625493765e-3)) * z + F32(4.166664568298827e-2)) * z * z \
        - F32(0.5) * z + F32(1.0)
    odd = (q & np.uint32(1)) != np.uint32(0)
    cc = s if odd else c
    ss = c if odd else s
    sx = F32(-1.0) if (q == np.uint32(1) or q == np.uint32(2)) else F32(1.0)
    sy = F32(-1.0) if q >= np.uint32(2) else F32(1.0)
    return r * cc * sx, r * ss * sy


@numba.njit(**_FAST)
def fill_normal(out, key):
    """Fill the contiguous 1-d array ``out`` with N(0, 1) numbers (block layout)."""
    wide_vectors()
    key = U64(key)
    n = out.size
    nb = n // (2 * BLOCK)
    for b in range(nb):
        base = 2 * BLOCK * b
        for k in range(BLOCK):
            z0, z1 = normal_pair(key, b * BLOCK + k)
            out[base + k] = z0
            out[base + BLOCK + k] = z1
    j = nb * BLOCK
    i = 2 * BLOCK * nb
    while i < n:
        z0, z1 = normal_pair(key, j)
        out[i] = z0
        if i + 1 < n:
            out[i + 1] = z1
        i += 2
        j += 1


@numba.njit(**_FAST)
def normal_at(key, i, n):
    """Element ``i`` of ``fill_normal`` on an array of ``n`` elements."""
    key = U64(key)
    nb = n // (2 * BLOCK)
    if i < 2 * BLOCK * nb:
        b = i // (2 * BLOCK)
        r = i - 2 * BLOCK * b
        k = r if r < BLOCK else r - BLOCK
        z0, z1 = normal_pair(key, b * BLOCK + k)
        return z0 if r < BLOCK else z1
    r = i - 2 * BLOCK * nb
    z0, z1 = normal_pair(key, nb * BLOCK + r // 2)
    return z0 if r % 2 == 0 else z1


@numba.njit(**_OPTS)
def fill_rademacher(out, key):
    """Fill the contiguous 1-d array ``out`` with independent +1/-1 (one hash per 64 elements)."""
    wide_vectors()
    key = U64(key)
    n = out.size
    nw = n // 64
    for w in range(nw):
        h = mix64(key + U64(w) * GOLDEN)
        base = 64 * w
        for k in range(64):
            out[base + k] = F32(1.0) - F32(2.0) * F32(np.int64((h >> U64(k)) & U64(1)))
    if n > 64 * nw:
        h = mix64(key + U64(nw) * GOLDEN)
        for k in range(n - 64 * nw):
            out[64 * nw + k] = F32(1.0) - F32(2.0) * F32(np.int64((h >> U64(k)) & U64(1)))


@numba.njit(**_OPTS)
def rademacher_at(key, i):
    """Element ``i`` of ``fill_rademacher``."""
    key = U64(key)
    h = mix64(key + U64(i // 64) * GOLDEN)
    return F32(1.0) - F32(2.0) * F32(np.int64((h >> U64(i % 64)) & U64(1)))


@numba.njit(**_OPTS)
def fill_direction(out, key, dist):
    """``fill_normal`` (dist == NORMAL) or ``fill_rademacher`` into the flat array ``out``."""
    if dist == RADEMACHER:
        fill_rademacher(out, key)
    else:
        fill_normal(out, key)


@numba.njit(**_OPTS)
def uniform01(key, j):
    """A float64 uniform on [0, 1) (53 bits) at position ``j``."""
    key = U64(key)
    h = mix64(key + U64(j) * GOLDEN)
    return np.float64(np.int64(h >> U64(11))) * 1.1102230246251565e-16


@numba.njit(**_OPTS)
def permutation(out, key):
    """A uniformly random permutation of ``0..len(out)-1`` into ``out`` (Fisher-Yates)."""
    key = U64(key)
    n = out.size
    for i in range(n):
        out[i] = i
    for i in range(n - 1, 0, -1):
        h = mix64(key + U64(i) * GOLDEN)
        # multiply-shift on 32 random bits: bias <= n / 2**32
        j = np.int64(((h >> U64(32)) * U64(i + 1)) >> U64(32))
        t = out[i]
        out[i] = out[j]
        out[j] = t


@numba.njit(**_OPTS)
def draw_factors(a, b, key, dist):
    """A low-rank direction's factors: entries of ``a`` (m x r) and ``b`` (n x r) from ``dist``,
    ``a`` scaled by ``1/sqrt(r)`` (then ``E[vec(a b^T) vec(a b^T)^T] = I``)."""
    af = a.reshape(-1)
    fill_direction(af, derive(key, 0, 0), dist)
    fill_direction(b.reshape(-1), derive(key, 0, 1), dist)
    s = a.dtype.type(1.0 / np.sqrt(a.shape[1]))
    for i in range(af.size):
        af[i] *= s
