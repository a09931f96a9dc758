"""Generalised cross-validation of linear-kernel ridge regression.

Golub, Heath, Wahba, "Generalized Cross-Validation as a Method for Choosing a
Good Ridge Parameter", Technometrics 21, 1979.

Ridge regression y = b + F w with an unpenalised intercept b is ridge on the
column-centred Fc, yc: its hat matrix (kernel K = Fc Fc') is

    H(lambda) = 11'/n + Fc (Fc'Fc + lambda I)^-1 Fc',

and for one target column y (n,)

    GCV(lambda) = (1/n) ||(I - H) y||^2 / (1 - tr(H) / n)^2,

the leave-one-out error with every leverage H_ii replaced by their mean (the
intercept's 1 is counted in tr H). From one thin SVD Fc = U diag(s) V' and
z = U' yc, with k = min(n, D) singular values,

    tr H           = 1 + sum_i s_i^2 / (s_i^2 + lambda)
    ||(I - H) y||^2 = ||yc - U z||^2 + sum_i (lambda / (s_i^2 + lambda))^2 z_i^2,

so a whole grid of lambdas costs O(k C) each after the SVD. The SVD is taken
without forming U (n x k): a QR of [Fc | yc] gives Fc = Q1 R,
Q1'yc and ||yc - Q1 Q1'yc|| in its triangular factor, and the SVD of the small
R = U_R diag(s) V' gives U = Q1 U_R, z = U_R' Q1'yc. The triangular factor is
built by TSQR over row blocks (blocks.py): cost O(n (D + C)^2), memory
O(block (D + C) + (D + C)^2) whatever n is; no n x n matrix is formed. lambda must be > 0; then
tr H < n for any n >= 2.

Targets: (n,) integer labels become one-hot columns (one per class), (n, C)
floats are used as is. With several columns the GCV curve is the mean of the
per-column curves (all share tr H), one lambda is chosen for all columns, and

    score = mean_j (1 - GCV_j(lambda*) / var(y_j)),   var with 1/n,

a predictive R^2: 1 is perfect prediction, 0 no better than the column mean
(features unrelated to the targets give slightly negative values, of order
-1/n). The default grid is s_max^2 * logspace(-6, 1, 50), which
moves with the scale of the features; if the minimum sits at an end of the
grid, pass a wider one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .blocks import BLOCK_ROWS, centred_blocks, check_matrix, r_factor
from .logme import as_target_matrix

__all__ = ["GCVResult", "default_lambdas", "gcv_curve", "kernel_ridge_gcv"]


@dataclass(frozen=True)
class GCVResult:
    """GCV of linear-kernel ridge regression over a grid of lambdas.

    best_lambda: the grid lambda with the smallest mean GCV.
    gcv: that smallest mean GCV (a mean squared prediction error).
    score: mean over target columns of 1 - GCV_j(best_lambda) / var(y_j).
    lambdas: (L,) the grid; curve: (L,) mean GCV over target columns per lambda.
    """

    best_lambda: float
    gcv: float
    score: float
    lambdas: np.ndarray
    curve: np.ndarray


@dataclass(frozen=True)
class _Decomposition:
    n: int
    s2: np.ndarray  # (k,) squared singular values of Fc
    z2: np.ndarray  # (k, C) squared coordinates of yc on the left singular vectors U
    outside: np.ndarray  # (C,) ||yc - U U'yc||^2
    var: np.ndarray  # (C,) ||yc||^2 / n


def _decompose(features: Any, targets: np.ndarray, block_rows: int) -> _Decomposition:
    n, d = check_matrix(features, "features")
    y = as_target_matrix(targets)
    if y.shape[0] != n:
        raise ValueError(f"features have n={n} rows but targets have n={y.shape[0]}")
    if n < 2:
        raise ValueError(f"GCV needs at least 2 samples, got n={n}")
    yc = y - y.mean(axis=0)
    yc[:, np.ptp(y, axis=0) == 0] = 0.0  # constant columns exactly zero, not rounding noise

    def stacked() -> Iterator[tuple[slice, np.ndarray]]:
        for rows, fc in centred_blocks(features, "features", block_rows)():
            yield rows, np.hstack([fc, yc[rows]])

    k = min(n, d)
    tri = r_factor(stacked(), d + y.shape[1])  # [[R, Q1'yc], [0, T]]; ||T e_j|| = ||yc_j - Q1 Q1'yc_j||
    u_r, s, _ = np.linalg.svd(tri[:k, :d], full_matrices=False)
    z = u_r.T @ tri[:k, d:]
    rest = tri[k:, d:]
    return _Decomposition(
        n=n,
        s2=s * s,
        z2=z * z,
        outside=np.einsum("ij,ij->j", rest, rest),
        var=np.einsum("ij,ij->j", yc, yc) / n,
    )


def _per_column(dec: _Decomposition, lambdas: np.ndarray) -> np.ndarray:
    """(L, C) GCV for every lambda and target column."""
    lam = lambdas[:, None]
    shrink = lam / (dec.s2[None, :] + lam)  # (L, k): 1 - eigenvalues of the centred hat matrix
    residual = np.square(shrink) @ dec.z2 + dec.outside  # (L, C)
    df = 1.0 + (1.0 - shrink).sum(axis=1)  # (L,) tr H, intercept included
    return residual / dec.n / np.square(1.0 - df / dec.n)[:, None]


def _check_lambdas(lambdas: np.ndarray) -> np.ndarray:
    lam = np.asarray(lambdas, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"lambdas must be a non-empty 1-D array, got shape {lam.shape}")
    if not (np.isfinite(lam).all() and (lam > 0).all()):
        raise ValueError("lambdas must be finite and positive")
    return lam


def _grid(s2: np.ndarray) -> np.ndarray:
    top = float(s2.max(initial=0.0))
    return (top if top > 0 else 1.0) * np.logspace(-6, 1, 50)


def default_lambdas(features: Any, *, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """s_max^2 * logspace(-6, 1, 50) for the centred features (s_max = 0 counts as 1)."""
    _, d = check_matrix(features, "features")
    s = np.linalg.svd(r_factor(centred_blocks(features, "features", block_rows)(), d), compute_uv=False)
    return _grid(s * s)


def gcv_curve(features: Any, targets: np.ndarray, lambdas: np.ndarray, *, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """GCV (L,) per lambda of ridge on features (n, D) with intercept, averaged over target columns."""
    lam = _check_lambdas(lambdas)
    return _per_column(_decompose(features, targets, block_rows), lam).mean(axis=1)


def kernel_ridge_gcv(
    features: Any, targets: np.ndarray, lambdas: np.ndarray | None = None, *, block_rows: int = BLOCK_ROWS
) -> GCVResult:
    """GCV-selected ridge lambda and its predictive R^2 for targets (n,) labels or (n, C) floats.

    lambdas defaults to ``default_lambdas(features)``. Raises ValueError for a
    constant target column (its R^2 is undefined).
    """
    dec = _decompose(features, targets, block_rows)
    lam = _grid(dec.s2) if lambdas is None else _check_lambdas(lambdas)
    if (dec.var == 0).any():
        raise ValueError(f"target columns {np.flatnonzero(dec.var == 0).tolist()} are constant; R^2 is undefined")
    per_column = _per_column(dec, lam)
    curve = per_column.mean(axis=1)
    best = int(np.argmin(curve))
    return GCVResult(
        best_lambda=float(lam[best]),
        gcv=float(curve[best]),
        score=float(np.mean(1.0 - per_column[best] / dec.var)),
        lambdas=lam,
        curve=curve,
    )
