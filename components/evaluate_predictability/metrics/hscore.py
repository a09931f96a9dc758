"""H-score and its shrinkage (regularised) variant.

H-score: Bao, Li, Huang, Wang, Zamir, Guibas, "An Information-Theoretic
Approach to Transferability in Task Transfer Learning", ICIP 2019.

For features f (n, D) and integer class labels y (n,), with Zc = f - mean(f),
class means m_c over the n_c rows of class c and d_c = m_c - mean(f),

    cov(f)      = Zc'Zc / n
    cov(E[f|y]) = sum_c (n_c / n) d_c d_c'
    H(f)        = tr(cov(f)^+ cov(E[f|y])) = sum_c n_c d_c' (Zc'Zc)^+ d_c.

The 1/n normalisation cancels (1/(n-1) in both, as np.cov, gives the same
value). H is Pillai's trace of a one-way MANOVA: 0 <= H <= min(rank f, C - 1);
H = rank cov(E[f|y]) (C - 1 for one-hot features) when the features are
constant within classes, and E[H] = D (C - 1) / (n - 1) for Gaussian features
independent of the labels. It is unchanged by any injective linear map and
translation of the features. When rank f >= n - 1 (e.g. D >= n - 1) every
labelling gives H = C - 1.

The pseudo-inverse comes from the singular values s and right singular
vectors V of Zc, taken from the small R factor of a QR of Zc (min(n, D) x D,
by TSQR over row blocks: see blocks.py), so the condition number is never
squared, no n x n matrix is formed and the features may be a memory map:
directions with s_i <= rtol * s_max count as null (default rtol = max(n, D)
eps, with eps that of the input's own float type: the matrix_rank convention.
A float32 copy of a rank-r embedding carries rounding noise near 1e-7 s_max in
its other directions, which float64's eps would count and invert), and with
the r kept directions

    H = sum_c n_c ||S_r^-1 V_r' d_c||^2.

Shrinkage variant (Ibrahim, Ponomareva, Mazumder, "Newer is not always better:
Rethinking transferability metrics, their peculiarities, stability and
performance"): with S = cov(f), mu = tr(S) / D and the Ledoit-Wolf intensity
alpha,

    cov_alpha(f) = (1 - alpha) S + alpha mu I
    H_alpha(f)   = (1 - alpha) tr(cov_alpha(f)^-1 cov(E[f|y]))
                 = tr((S + alpha mu / (1 - alpha) I)^-1 cov(E[f|y]))  (alpha < 1),

a ridge-regularised H-score, so H_alpha <= H; it is 0 at alpha = 1.

Ledoit-Wolf intensity (Ledoit, Wolf, "A well-conditioned estimator for
large-dimensional covariance matrices", J. Multivariate Anal. 88, 2004), in
their normalised Frobenius norm ||A||^2 = tr(AA') / D, for centred rows z_k:

    delta^2 = ||S - mu I||^2
    b^2     = (1 / n^2) sum_k ||z_k z_k' - S||^2 = (sum_k ||z_k||^4 - n ||S||_F^2) / (n^2 D)
    alpha   = min(b^2, delta^2) / delta^2,

the value of sklearn.covariance.ledoit_wolf_shrinkage. When S = mu I (to
rounding; always so for D = 1, and for n = 1) the shrunk covariance is S
whatever alpha, and alpha = 0 as in sklearn, so that H_alpha = H; note that
alpha -> 1 as S approaches mu I without reaching it. It is computed from the
singular values of Zc and the row norms, without a D x D product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .blocks import BLOCK_ROWS, centred_blocks, check_matrix, r_factor
from .logme import as_target_matrix

__all__ = ["hscore", "ledoit_wolf_shrinkage", "regularized_hscore"]

_EPS = float(np.finfo(np.float64).eps)


def _one_hot_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """(n,) integer labels as (n, C) one-hot columns (sorted label order)."""
    t = np.asarray(labels)
    if t.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of integer class labels, got shape {t.shape}")
    y = as_target_matrix(t)
    if y.shape[0] != n:
        raise ValueError(f"features have n={n} rows but labels have n={y.shape[0]}")
    return y


@dataclass(frozen=True)
class _Centred:
    """One pass over the centred features Zc: its spectrum and the sums the scores need."""

    n: int
    d: int
    s: np.ndarray  # singular values of Zc, descending
    vt: np.ndarray  # their right singular vectors, V'
    class_sums: np.ndarray  # (C, D) rows c: n_c d_c = sum of the centred rows of class c
    counts: np.ndarray  # (C,) n_c
    row_sq: float  # sum_k ||z_k||^2
    row_sq_sq: float  # sum_k ||z_k||^4
    eps: float  # machine eps of the input's float type (float64's for other types)


def _centred(features: Any, labels: np.ndarray | None, block_rows: int) -> _Centred:
    n, d = check_matrix(features, "features")
    y = np.zeros((n, 0)) if labels is None else _one_hot_labels(labels, n)
    class_sums = np.zeros((y.shape[1], d))
    norms = [0.0, 0.0]

    def blocks():  # the QR's input, with the sums taken on the way
        for rows, block in centred_blocks(features, "features", block_rows)():
            class_sums[:] += y[rows].T @ block
            sq = np.einsum("ij,ij->i", block, block)
            norms[0] += float(sq.sum())
            norms[1] += float(np.square(sq).sum())
            yield rows, block

    _, s, vt = np.linalg.svd(r_factor(blocks(), d), full_matrices=False)
    dtype = getattr(features, "dtype", None)
    eps = float(np.finfo(dtype).eps) if dtype is not None and np.issubdtype(dtype, np.floating) else _EPS
    return _Centred(n, d, s, vt, class_sums, y.sum(axis=0), norms[0], norms[1], eps)


def _kept(c: _Centred, rtol: float | None) -> np.ndarray:
    if rtol is None:
        rtol = max(c.n, c.d) * c.eps
    elif not (np.isfinite(rtol) and rtol >= 0):
        raise ValueError(f"rtol must be finite and non-negative, got {rtol}")
    return c.s > rtol * c.s.max(initial=0.0)


def _shrinkage(c: _Centred) -> float:
    n, d = c.n, c.d
    lam = c.s * c.s / n  # non-zero part of the spectrum of S; the other D - len(s) eigenvalues are 0
    mu = c.row_sq / (n * d)
    delta2 = (np.square(lam - mu).sum() + (d - lam.size) * mu * mu) / d
    if delta2 <= (max(n, d) * _EPS * lam.max(initial=0.0)) ** 2:
        return 0.0  # S = mu I up to rounding (always so for D = 1): nothing to shrink
    b2 = max((c.row_sq_sq - n * np.square(lam).sum()) / (n * n * d), 0.0)
    return float(min(b2, delta2) / delta2)


def ledoit_wolf_shrinkage(features: Any, *, block_rows: int = BLOCK_ROWS) -> float:
    """Ledoit-Wolf shrinkage intensity in [0, 1] of the (1/n) covariance of features (n, D)."""
    return _shrinkage(_centred(features, None, block_rows))


def hscore(features: Any, labels: np.ndarray, *, rtol: float | None = None, block_rows: int = BLOCK_ROWS) -> float:
    """H-score tr(cov(f)^+ cov(E[f|y])) of features (n, D) for integer labels (n,).

    rtol: singular values of the centred features at or below rtol * s_max are
    treated as zero by the pseudo-inverse (default max(n, D) * the machine eps
    of the features' float type).
    """
    c = _centred(features, labels, block_rows)
    keep = _kept(c, rtol)
    # row c: n_c S^-1 V'd_c
    proj = c.class_sums @ c.vt[keep].T / c.s[keep]
    return float((np.einsum("ij,ij->i", proj, proj) / c.counts).sum())


def regularized_hscore(
    features: Any, labels: np.ndarray, *, rtol: float | None = None, block_rows: int = BLOCK_ROWS
) -> float:
    """Shrinkage H-score (1 - alpha) tr(cov_alpha(f)^-1 cov(E[f|y])), alpha from Ledoit-Wolf.

    rtol only matters when alpha = 0 (pseudo-inverse as in ``hscore``); the
    class-mean differences lie in the row space of the centred features, so
    directions outside it never contribute.
    """
    c = _centred(features, labels, block_rows)
    alpha = _shrinkage(c)
    keep = _kept(c, rtol)
    mu = c.row_sq / (c.n * c.d)
    eig = (1.0 - alpha) * c.s[keep] ** 2 / c.n + alpha * mu  # spectrum of cov_alpha on the kept directions
    proj = c.class_sums @ c.vt[keep].T  # row c: n_c V'd_c
    between = (np.square(proj) / c.counts[:, None]).sum(axis=0) / c.n  # V' cov(E[f|y]) V, diagonal
    return float((1.0 - alpha) * (between / eig).sum())
