"""LogME: maximised log evidence of a Bayesian linear model on frozen features.

You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models for
Transfer Learning", ICML 2021.

For features F (n, D) and one target column y (n,):

    y = F w + e,   w ~ N(0, I_D / alpha),   e ~ N(0, I_n / beta),

so y ~ N(0, I_n / beta + F F' / alpha). With A = alpha I_D + beta F'F and the
posterior mean m = beta A^{-1} F' y,

    log p(y | F, alpha, beta) = n/2 log beta + D/2 log alpha - n/2 log(2 pi)
                                - beta/2 ||F m - y||^2 - alpha/2 ||m||^2
                                - 1/2 log det A.

With the squared singular values lam_i of F (r = rank(F) of them non-zero),
V its right and U its left singular vectors, p = V'F'y = diag(s) U'y:

    log det A     = sum_{i<=r} log(alpha + beta lam_i) + (D - r) log alpha
    ||m||^2       = sum_i (beta p_i / (alpha + beta lam_i))^2
    ||F m - y||^2 = ||y||^2 - sum_i beta p_i^2 (1 + shrink_i) / (alpha + beta lam_i),
                    shrink_i = alpha / (alpha + beta lam_i),

none of which divides by a singular value. The spectrum comes from the smaller
Gram matrix: for n > D the D x D matrix F'F, summed over row blocks (so F may be
a memory map larger than memory; see blocks.py), whose eigenvectors are V; for
n <= D the n x n matrix F F', whose eigenvectors are U, z = U'y exactly, and the
residual is sum_i (shrink_i z_i)^2 plus what lies outside the span of F. This
is the eigendecomposition the reference algorithm also uses; all target columns
share it and are iterated together.

The reference implementation drops the (D - r) log alpha term (thuml/LogME
issue 23), which inflates the score whenever D > n; it is kept here, so the
evidence is unchanged by appending all-zero feature columns.

The evidence is maximised over (alpha, beta) by MacKay's fixed point

    gamma = sum_i beta s_i^2 / (alpha + beta s_i^2)
    alpha <- gamma / ||m||^2,    beta <- (n - gamma) / ||F m - y||^2,

whose fixed points are exactly the stationary points of the evidence above.
The LogME score is the maximised evidence divided by n, averaged over columns.

Targets: (n,) integer class labels, turned into one-vs-rest one-hot columns in
sorted label order, or an (n, C) float matrix (regression C = 1, multi-label
0/1 columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .blocks import BLOCK_ROWS, check_matrix, gram, row_blocks

__all__ = ["LogMEResult", "as_target_matrix", "log_evidence", "logme"]

_LOG_2PI = float(np.log(2.0 * np.pi))
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class LogMEResult:
    """LogME at the evidence maximum.

    score: mean of ``evidence`` over target columns.
    evidence: (C,) maximised log evidence divided by n, per column.
    alpha, beta: (C,) prior and noise precisions at the fixed point.
    weights: (D, C) posterior mean of w at the fixed point.
    """

    score: float
    evidence: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    weights: np.ndarray


def as_target_matrix(targets: np.ndarray) -> np.ndarray:
    """Targets as an (n, C) float64 matrix.

    (n,) integer (or bool) labels become one-hot columns, one per distinct
    label in sorted order; an (n, C) array is cast to float64 as is.
    """
    t = np.asarray(targets)
    if t.ndim == 1:
        if not (np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_):
            raise ValueError(
                f"1-D targets must be integer class labels, got dtype {t.dtype}; "
                "pass real-valued targets as an (n, C) array"
            )
        classes, index = np.unique(t, return_inverse=True)
        y = np.zeros((t.shape[0], classes.size), dtype=np.float64)
        y[np.arange(t.shape[0]), index] = 1.0
        return y
    if t.ndim != 2:
        raise ValueError(f"targets must be (n,) labels or an (n, C) matrix, got shape {t.shape}")
    y = np.array(t, dtype=np.float64)
    if y.shape[1] == 0:
        raise ValueError("targets have no columns")
    if not np.isfinite(y).all():
        raise ValueError("targets contain NaN or inf")
    return y


@dataclass(frozen=True)
class _Spectrum:
    """What every evidence computation needs, for all target columns at once.

    lam (k,): the non-zero eigenvalues of F'F; proj (k, C) = V'F'y; y_sq (C,) = ||y||^2.
    z (k, C) = U'y when computed from F F' (n <= D), else None; weights(coef) = V coef.
    """

    n: int
    d: int
    lam: np.ndarray
    proj: np.ndarray
    y_sq: np.ndarray
    z: np.ndarray | None
    weights: Callable[[np.ndarray], np.ndarray]


def _kept(lam: np.ndarray, n: int, d: int) -> np.ndarray:
    """Eigenvalues above the Gram matrix's rounding level count as the rank (others are 0)."""
    return lam > lam.max(initial=0.0) * max(n, d) * _EPS


def _spectrum(features: Any, y: np.ndarray, block_rows: int) -> _Spectrum:
    n, d = check_matrix(features, "features")
    if y.shape[0] != n:
        raise ValueError(f"features have n={n} rows but targets have n={y.shape[0]}")
    y_sq = np.einsum("ij,ij->j", y, y)
    if n > d:  # primal: F'F from row blocks, y'F alongside (the cheaper orientation for BLAS)
        g, y_f = gram(features, "features", block_rows, cross=y)
        lam, v = np.linalg.eigh(g)
        keep = _kept(lam, n, d)
        v = v[:, keep]
        return _Spectrum(n, d, lam[keep], v.T @ y_f.T, y_sq, None, lambda coef: v @ coef)
    f = next(row_blocks(features, "features", n))[1]  # dual: n <= D, F is no bigger than F'F
    lam, u = np.linalg.eigh(f @ f.T)
    keep = _kept(lam, n, d)
    lam, u = lam[keep], u[:, keep]
    z = u.T @ y
    s = np.sqrt(lam)[:, None]
    return _Spectrum(n, d, lam, s * z, y_sq, z, lambda coef: f.T @ (u @ (coef / s)))


def _moments(sp: _Spectrum, cols: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> dict[str, np.ndarray]:
    """Posterior quantities for the target columns `cols`; alpha/beta (len(cols),)."""
    lam = sp.lam[:, None]
    proj = sp.proj[:, cols]
    denom = alpha + beta * lam  # (k, C)
    shrink = alpha / denom  # 1 - beta lam / denom, kept separate so n - gamma never cancels
    k = lam.shape[0]
    coef = beta * proj / denom
    if sp.z is not None:  # from U'y directly; with k = n nothing lies outside the span of F
        z = sp.z[:, cols]
        outside = 0.0 if k == sp.n else np.maximum(sp.y_sq[cols] - np.einsum("ij,ij->j", z, z), 0.0)
        residual = ((shrink * z) ** 2).sum(axis=0) + outside
    else:
        residual = np.maximum(sp.y_sq[cols] - (beta * proj * proj * (1.0 + shrink) / denom).sum(axis=0), 0.0)
    return {
        "gamma": (beta * lam / denom).sum(axis=0),
        "n_minus_gamma": (sp.n - k) + shrink.sum(axis=0),
        "m_sq": (coef * coef).sum(axis=0),
        "residual": residual,
        # zero eigenvalues contribute log(alpha) each, giving (D - r) log alpha overall
        "logdet": np.log(denom).sum(axis=0) + (sp.d - k) * np.log(alpha),
        "coef": coef,  # m = V coef
    }


def _evidence(mo: dict[str, np.ndarray], n: int, d: int, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return (
        0.5 * n * np.log(beta)
        + 0.5 * d * np.log(alpha)
        - 0.5 * n * _LOG_2PI
        - 0.5 * beta * mo["residual"]
        - 0.5 * alpha * mo["m_sq"]
        - 0.5 * mo["logdet"]
    )


def _precisions(value: np.ndarray | float, c: int, name: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.ndim > 1 or (v.ndim == 1 and v.shape[0] not in (1, c)):
        raise ValueError(f"{name} must be a scalar or have shape ({c},), got shape {v.shape}")
    v = np.broadcast_to(v, (c,)).copy()
    if not (np.isfinite(v).all() and (v > 0).all()):
        raise ValueError(f"{name} must be finite and positive")
    return v


def log_evidence(
    features: Any,
    targets: np.ndarray,
    alpha: np.ndarray | float,
    beta: np.ndarray | float,
    *,
    block_rows: int = BLOCK_ROWS,
) -> np.ndarray:
    """log p(y | F, alpha, beta) for each column of targets (n, C); returns (C,).

    alpha and beta are scalars or (C,) arrays of positive precisions.
    """
    y = np.asarray(targets)
    if y.ndim != 2:
        raise ValueError(f"targets must be an (n, C) matrix, got shape {y.shape}")
    y = as_target_matrix(y)
    c = y.shape[1]
    a, b = _precisions(alpha, c, "alpha"), _precisions(beta, c, "beta")
    sp = _spectrum(features, y, block_rows)
    return _evidence(_moments(sp, np.arange(c), a, b), sp.n, sp.d, a, b)


def logme(
    features: Any, targets: np.ndarray, *, max_iter: int = 100, tol: float = 1e-5, block_rows: int = BLOCK_ROWS
) -> LogMEResult:
    """LogME of features (n, D) for targets (n,) integer labels or (n, C) floats.

    Runs the MacKay fixed point from alpha = beta = 1 for all columns together,
    freezing a column once alpha and beta both change by less than ``tol``
    relatively, or once it runs off to a boundary maximum (alpha -> inf, or
    beta -> inf when rank(F) = n) far enough that the evidence no longer moves
    in float64. Features are read ``block_rows`` rows at a time (any array,
    a memory map included).
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    y = as_target_matrix(targets)
    sp = _spectrum(features, y, block_rows)
    n = sp.n
    if (sp.y_sq == 0).any():
        raise ValueError(
            f"target columns {np.flatnonzero(sp.y_sq == 0).tolist()} are all zero; their evidence is unbounded"
        )
    rank = sp.lam.shape[0]
    s2_max = float(sp.lam.max(initial=0.0))
    s2_min = float(sp.lam.min(initial=0.0))
    c = y.shape[1]
    alpha = np.ones(c)
    beta = np.ones(c)
    active = np.ones(c, dtype=bool)
    for _ in range(max_iter):
        cols = np.flatnonzero(active)
        if cols.size == 0:
            break
        a, b = alpha[cols], beta[cols]
        mo = _moments(sp, cols, a, b)
        # m = 0 (y orthogonal to the span of F, or F = 0) leaves alpha where it is
        new_a = np.where(mo["m_sq"] > 0, mo["gamma"] / np.where(mo["m_sq"] > 0, mo["m_sq"], 1.0), a)
        new_b = mo["n_minus_gamma"] / mo["residual"]
        alpha[cols], beta[cols] = new_a, new_b
        # Boundary maxima: alpha -> inf (y unrelated to F) or, when r = n, beta -> inf
        # (exact interpolation); a parameter counts as settled once the evidence is
        # flat in it to float64 precision.
        settled_a = (np.abs(new_a - a) <= tol * a) | (new_a * _EPS >= new_b * s2_max)
        settled_b = np.abs(new_b - b) <= tol * b
        if rank == n:
            settled_b |= new_b * s2_min * _EPS >= new_a
        done = settled_a & settled_b
        active[cols[done]] = False
    mo = _moments(sp, np.arange(c), alpha, beta)
    evidence = _evidence(mo, sp.n, sp.d, alpha, beta) / n
    return LogMEResult(
        score=float(evidence.mean()),
        evidence=evidence,
        alpha=alpha,
        beta=beta,
        weights=sp.weights(mo["coef"]),
    )
