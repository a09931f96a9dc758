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
logdet(I_m + a Z Z') by Sylvester's identity. A tall block is first reduced to
the D x D triangular factor of its QR, so no m x m matrix is formed and, unlike
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

import numpy as np

from .hscore import _one_hot_labels
from .kernel_alignment import _as_matrix

__all__ = ["coding_rate", "transrate"]


def _rate(z: np.ndarray, d: int, eps: float) -> float:
    """1/2 logdet(I + d / (m eps^2) z'z) for a block z (m, D), from its singular values."""
    m = z.shape[0]
    s = np.linalg.svd(np.linalg.qr(z, mode="r") if m > z.shape[1] else z, compute_uv=False)
    with np.errstate(divide="ignore"):
        log_a_s2 = 2.0 * (np.log(s) - np.log(eps)) + np.log(d / m)  # log(a s^2), -inf for s = 0
    return 0.5 * float(np.logaddexp(0.0, log_a_s2).sum())  # log(1 + a s^2) without overflow


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be finite and positive, got {eps}")
    return eps


def coding_rate(features: np.ndarray, eps: float = 1e-4) -> float:
    """R(Z, eps) = 1/2 logdet(I_D + D / (n eps^2) Z'Z) of features (n, D), used as given (no centring)."""
    z = _as_matrix(features, "features")
    return _rate(z, z.shape[1], _check_eps(eps))


def transrate(features: np.ndarray, labels: np.ndarray, eps: float = 1e-4) -> float:
    """TransRate R(Z, eps) - sum_c n_c/n R(Z_c, eps) of features (n, D) for integer labels (n,)."""
    eps = _check_eps(eps)
    f = _as_matrix(features, "features")
    y = _one_hot_labels(labels, f.shape[0])
    n, d = f.shape
    z = f - f.mean(axis=0)
    index = y.argmax(axis=1)
    order = np.argsort(index, kind="stable")
    counts = y.sum(axis=0).astype(np.int64)
    blocks = np.split(z[order], np.cumsum(counts)[:-1])
    conditional = sum(n_c / n * _rate(z_c, d, eps) for n_c, z_c in zip(counts, blocks, strict=True))
    return _rate(z, d, eps) - float(conditional)
