"""TransRate: coding-rate reduction of features by class labels.

Huang, Huang, Rong, Yang, Wei, "Frustratingly Easy Transferability
Estimation", ICML 2022 (the coding rate is that of Ma et al. 2007 / MCR^2,
Yu et al. 2020).

For features f (n, D), integer class labels y (n,) and distortion eps, the
features are centred ONCE with the global mean, Z = f - mean(f) (the paper's
convention); Z_c holds the n_c rows of Z of class c and is not re-centred.

    R(Z, eps)   = 1/2 logdet(I_D + D / (n eps^2) Z'Z)
    R^c(Z, eps) = sum_c (n_c / n) R(Z_c, eps)
                = sum_c (n_c / n) 1/2 logdet(I_D + D / (n_c eps^2) Z_c'Z_c)
    TrR         = R(Z, eps) - R^c(Z, eps).

Each log-determinant is sum_i log(1 + a s_i^2) over the singular values s_i of
the (m, D) block (m = n or n_c), which equals the m x m form
logdet(I_m + a Z Z') by Sylvester's identity. Each block is reduced to the
triangular factor of its QR (by TSQR over row blocks, one running factor per
class: see blocks.py), so no m x m matrix is formed, the features may be a
memory map and, unlike
the Gram matrix Z'Z, directions with s_i ~ 0 (rank-deficient features, where
a = D / (m eps^2) ~ 1e8 D / m magnifies any rounding in s_i^2) stay at 0.

Since Z'Z = sum_c Z_c'Z_c, I + D/(n eps^2) Z'Z = sum_c (n_c/n)(I + D/(n_c eps^2) Z_c'Z_c),
so TrR >= 0 by concavity of logdet, with equality when all classes share
Z_c'Z_c / n_c (e.g. a single class). TrR is unchanged by orthogonal maps and
translations of the features, by permuting samples and by renaming classes;
it is not scale invariant (eps is an absolute distortion).

The authors' released code scales by 1 / (n eps) instead of D / (n eps^2) and
averages the class rates uniformly (1/C); this module follows the equations
above, so its values differ from that code's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .blocks import BLOCK_ROWS, check_matrix, column_stats, r_factor, row_blocks
from .hscore import _one_hot_labels

__all__ = ["coding_rate", "transrate"]


def _rate(r: np.ndarray, m: int, d: int, eps: float) -> float:
    """1/2 logdet(I + d / (m eps^2) z'z) for a block z (m, D), from the R factor of its QR."""
    s = np.linalg.svd(r, compute_uv=False)
    with np.errstate(divide="ignore"):
        log_a_s2 = 2.0 * (np.log(s) - np.log(eps)) + np.log(d / m)  # log(a s^2), -inf for s = 0
    return 0.5 * float(np.logaddexp(0.0, log_a_s2).sum())  # log(1 + a s^2) without overflow


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be finite and positive, got {eps}")
    return eps


def coding_rate(features: Any, eps: float = 1e-4, *, block_rows: int = BLOCK_ROWS) -> float:
    """R(Z, eps) = 1/2 logdet(I_D + D / (n eps^2) Z'Z) of features (n, D), used as given (no centring)."""
    n, d = check_matrix(features, "features")
    return _rate(r_factor(row_blocks(features, "features", block_rows), d), n, d, _check_eps(eps))


def transrate(features: Any, labels: np.ndarray, eps: float = 1e-4, *, block_rows: int = BLOCK_ROWS) -> float:
    """TransRate R(Z, eps) - sum_c n_c/n R(Z_c, eps) of features (n, D) for integer labels (n,)."""
    eps = _check_eps(eps)
    n, d = check_matrix(features, "features")
    y = _one_hot_labels(labels, n)
    index = y.argmax(axis=1)
    counts = y.sum(axis=0).astype(np.int64)
    mean, _ = column_stats(features, "features", block_rows)
    whole = np.empty((0, d))
    per_class = [np.empty((0, d)) for _ in counts]
    for rows, z in row_blocks(features, "features", block_rows, shift=mean):
        whole = np.linalg.qr(np.vstack([whole, z]), mode="r")
        for c in np.unique(index[rows]):
            per_class[c] = np.linalg.qr(np.vstack([per_class[c], z[index[rows] == c]]), mode="r")
    conditional = sum(n_c / n * _rate(r_c, n_c, d, eps) for n_c, r_c in zip(counts, per_class, strict=True))
    return _rate(whole, n, d, eps) - float(conditional)
