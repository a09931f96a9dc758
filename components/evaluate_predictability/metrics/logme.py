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

Everything comes from one thin SVD F = U diag(s) V', r = rank(F), z = U' y:

    log det A     = sum_{i<=r} log(alpha + beta s_i^2) + (D - r) log alpha
    ||F m - y||^2 = sum_i (alpha z_i / (alpha + beta s_i^2))^2 + ||y||^2 - ||z||^2
    ||m||^2       = sum_i (beta s_i z_i / (alpha + beta s_i^2))^2

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

from dataclasses import dataclass

import numpy as np

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


def _as_features(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise ValueError(f"features must be a non-empty (n, D) matrix, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or inf")
    return f


def _spectrum(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Singular values (tiny ones set to 0), V', z = U'y and ||y||^2 per column."""
    if y.shape[0] != f.shape[0]:
        raise ValueError(f"features have n={f.shape[0]} rows but targets have n={y.shape[0]}")
    u, s, vt = np.linalg.svd(f, full_matrices=False)
    tol = s.max(initial=0.0) * max(f.shape) * np.finfo(np.float64).eps
    s = np.where(s > tol, s, 0.0)
    return s, vt, u.T @ y, np.einsum("ij,ij->j", y, y)


def _moments(
    s: np.ndarray, z: np.ndarray, y_sq: np.ndarray, n: int, d: int, alpha: np.ndarray, beta: np.ndarray
) -> dict[str, np.ndarray]:
    """Posterior quantities for every column at once; s (k,), z (k, C), alpha/beta (C,)."""
    s2 = (s * s)[:, None]
    denom = alpha + beta * s2  # (k, C)
    shrink = alpha / denom  # 1 - beta s^2 / denom, kept separate so n - gamma never cancels
    k = s.shape[0]
    # with k = n, U is square orthogonal and ||y||^2 - ||z||^2 is 0 up to rounding
    out_of_span = 0.0 if k == n else np.maximum(y_sq - np.einsum("ij,ij->j", z, z), 0.0)
    coef = beta * s[:, None] * z / denom
    return {
        "gamma": (beta * s2 / denom).sum(axis=0),
        "n_minus_gamma": (n - k) + shrink.sum(axis=0),
        "m_sq": (coef * coef).sum(axis=0),
        "residual": ((shrink * z) ** 2).sum(axis=0) + out_of_span,
        # zeroed singular values contribute log(alpha) each, giving (D - r) log alpha overall
        "logdet": np.log(denom).sum(axis=0) + (d - k) * np.log(alpha),
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
    features: np.ndarray, targets: np.ndarray, alpha: np.ndarray | float, beta: np.ndarray | float
) -> np.ndarray:
    """log p(y | F, alpha, beta) for each column of targets (n, C); returns (C,).

    alpha and beta are scalars or (C,) arrays of positive precisions.
    """
    f = _as_features(features)
    y = np.asarray(targets)
    if y.ndim != 2:
        raise ValueError(f"targets must be an (n, C) matrix, got shape {y.shape}")
    y = as_target_matrix(y)
    n, d = f.shape
    c = y.shape[1]
    a, b = _precisions(alpha, c, "alpha"), _precisions(beta, c, "beta")
    s, _, z, y_sq = _spectrum(f, y)
    return _evidence(_moments(s, z, y_sq, n, d, a, b), n, d, a, b)


def logme(features: np.ndarray, targets: np.ndarray, *, max_iter: int = 100, tol: float = 1e-5) -> LogMEResult:
    """LogME of features (n, D) for targets (n,) integer labels or (n, C) floats.

    Runs the MacKay fixed point from alpha = beta = 1 for all columns together,
    freezing a column once alpha and beta both change by less than ``tol``
    relatively, or once it runs off to a boundary maximum (alpha -> inf, or
    beta -> inf when rank(F) = n) far enough that the evidence no longer moves
    in float64.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    f = _as_features(features)
    y = as_target_matrix(targets)
    n, d = f.shape
    s, vt, z, y_sq = _spectrum(f, y)
    if (y_sq == 0).any():
        raise ValueError(
            f"target columns {np.flatnonzero(y_sq == 0).tolist()} are all zero; their evidence is unbounded"
        )
    rank = int(np.count_nonzero(s))
    s2_max = float(s.max()) ** 2
    s2_min = float(s[rank - 1]) ** 2 if rank else 0.0
    c = y.shape[1]
    alpha = np.ones(c)
    beta = np.ones(c)
    active = np.ones(c, dtype=bool)
    for _ in range(max_iter):
        cols = np.flatnonzero(active)
        if cols.size == 0:
            break
        a, b = alpha[cols], beta[cols]
        mo = _moments(s, z[:, cols], y_sq[cols], n, d, a, b)
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
    mo = _moments(s, z, y_sq, n, d, alpha, beta)
    evidence = _evidence(mo, n, d, alpha, beta) / n
    return LogMEResult(
        score=float(evidence.mean()),
        evidence=evidence,
        alpha=alpha,
        beta=beta,
        weights=vt.T @ mo["coef"],
    )
