"""Centred kernel-target alignment for the linear kernel.

Cortes, Mohri, Rostamizadeh, "Algorithms for Learning Kernels Based on
Centered Alignment", JMLR 13, 2012.

For features Z (n, D) and targets Y (n, C), K = Z Z', L = Y Y' and
H = I - 11'/n, the centred alignment is

    A = <HKH, HLH>_F / (||HKH||_F ||HLH||_F).

Since HKH = Zc Zc' with Zc = HZ (column-centred), it equals

    A = ||Zc' Yc||_F^2 / (||Zc' Zc||_F ||Yc' Yc||_F),

computed here without any n x n matrix (||Zc'Zc||_F = ||Zc Zc'||_F, so the
smaller of the two Gram matrices is formed). A lies in [0, 1]; it is linear
CKA (Kornblith et al. 2019) with the targets as the second representation.

Targets: (n,) integer class labels (one-hot, one column per label) or an
(n, C) float matrix used as is.
"""

from __future__ import annotations

import numpy as np

from .logme import as_target_matrix

__all__ = ["centered_kernel_alignment"]


def _centre(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=0)
    # constant columns become exactly zero, not rounding noise that would survive normalisation
    xc[:, np.ptp(x, axis=0) == 0] = 0.0
    return xc


def _gram_norm(xc: np.ndarray) -> float:
    n, d = xc.shape
    return float(np.linalg.norm(xc @ xc.T if n < d else xc.T @ xc))


def _linear_alignment(x: np.ndarray, y: np.ndarray) -> float:
    """Centred alignment of linear kernels of two finite float64 (n, .) matrices."""
    xc, yc = _centre(x), _centre(y)
    denom = _gram_norm(xc) * _gram_norm(yc)
    if denom == 0.0:
        return 0.0
    num = float(np.square(xc.T @ yc).sum())
    return float(np.clip(num / denom, 0.0, 1.0))


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(x, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n, D) matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} contain NaN or inf")
    return m


def centered_kernel_alignment(features: np.ndarray, targets: np.ndarray) -> float:
    """Centred alignment of K = Z Z' (features (n, D)) with L = Y Y' (targets (n,) or (n, C)).

    Returns 0.0 when the centred features or targets are all zero.
    """
    z = _as_matrix(features, "features")
    y = as_target_matrix(targets)
    if y.shape[0] != z.shape[0]:
        raise ValueError(f"features have n={z.shape[0]} rows but targets have n={y.shape[0]}")
    return _linear_alignment(z, y)
