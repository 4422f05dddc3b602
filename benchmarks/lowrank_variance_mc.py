"""Monte Carlo check (plain NumPy, no fwdjit) of the low-rank forward-gradient variance formulas.

The formulas and their derivation are in tests/test_forward_grad_lowrank.py.  Prints, per case,
the largest z-score of the sample mean, the largest relative error of the per-component variance
and the total E|g - grad f|^2 against the formula (and the dense direction's, for contrast).
Run: python -m benchmarks.lowrank_variance_mc   (about 5 s, one core)
"""
import numpy as np


def factors(rs, shape, dist):
    if dist == "normal":
        return rs.standard_normal(shape)
    return rs.integers(0, 2, shape) * 2.0 - 1.0

def formula_var(G, r, dist, S):
    """Var(g_ij) for the low-rank block G, S = total |grad f|^2 (all blocks)."""
    k1 = 2.0 if dist == "normal" else 0.0          # kappa - 1 (fourth moment minus 1)
    R = (G * G).sum(1)[:, None]; C = (G * G).sum(0)[None, :]
    return S + G**2 + (k1 * (R + C) + (k1**2 - 2) * G**2) / r

def formula_total(blocks, S):
    # blocks: list of (kind, N_b, |G_b|^2, extra)   E|g-grad|^2 = (N-1) S + sum gamma_b |G_b|^2
    N = sum(b[1] for b in blocks)
    return (N - 1) * S + sum(b[3] * b[2] for b in blocks)

def gamma_lowrank(m, n, r, dist):
    return 2 + 2 * (m + n + 1) / r if dist == "normal" else 2 - 2 / r

def run(m, n, r, dist, K, c=None, N=400_000, seed=0):
    rs = np.random.default_rng(seed)
    G = rs.standard_normal((m, n)); G[0, 0] = 2.5
    S = (G * G).sum() + (0 if c is None else c @ c)
    acc1 = np.zeros((m, n)); acc2 = np.zeros((m, n)); accc2 = 0 if c is None else np.zeros(c.size)
    tot = 0.0; ch = 20_000
    for s0 in range(0, N, ch):
        gW = np.zeros((ch, m, n)); gc = 0 if c is None else np.zeros((ch, c.size))
        for k in range(K):
            A = factors(rs, (ch, m, r), dist); B = factors(rs, (ch, n, r), dist)
            V = np.einsum("smk,snk->smn", A, B) / np.sqrt(r)
            d = np.einsum("smn,mn->s", V, G)
            if c is not None:
                v = factors(rs, (ch, c.size), dist); d = d + v @ c
                gc = gc + d[:, None] * v / K
            gW += d[:, None, None] * V / K
        eW = gW - G
        acc1 += eW.sum(0); acc2 += (eW**2).sum(0); tot += (eW**2).sum()
        if c is not None:
            ec = gc - c; accc2 = accc2 + (ec**2).sum(0); tot += (ec**2).sum()
    var_hat = acc2 / N
    var_f = formula_var(G, r, dist, S) / K
    blocks = [("lr", m * n, (G * G).sum(), gamma_lowrank(m, n, r, dist))]
    if c is not None:
        blocks.append(("dense", c.size, c @ c, 2.0 if dist == "normal" else 0.0))
    tot_f = formula_total(blocks, S) / K
    dense_f = (sum(b[1] for b in blocks) + (1 if dist == "normal" else -1)) * S / K
    zmax = (np.abs(acc1 / N) / np.sqrt(var_f / N)).max()
    print(f"{m}x{n} r={r} {dist:10s} K={K} mixed={c is not None}: mean err max {zmax:5.2f} sd | "
          f"Var(g_ij) rel err max {np.abs(var_hat/var_f-1).max():.4f} | total MC {tot/N:9.4f} formula {tot_f:9.4f} "
          f"(rel {tot/N/tot_f-1:+.4f}; dense-direction formula {dense_f:9.4f})")
    if c is not None:
        vc = (S + (1 if dist == "normal" else -1) * c**2) / K
        print(f"      dense block Var rel err max {np.abs(accc2/N/vc-1).max():.4f}")

if __name__ == "__main__":
    for (m, n) in [(3, 2), (2, 5), (4, 4)]:
        for r in (1, 2, 4):
            for dist in ("normal", "rademacher"):
                run(m, n, r, dist, 1)
    for dist in ("normal", "rademacher"):
        for r in (1, 3):
            run(3, 2, r, dist, 1, c=np.array([0.7, -1.2, 0.4]))
            run(3, 2, r, dist, 4, c=np.array([0.7, -1.2, 0.4]), N=200_000)
