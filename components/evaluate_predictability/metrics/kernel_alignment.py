"""Centred kernel-target alignment for the linear kernel.

Cortes, Mohri, Rostamizadeh, "Algorithms for Learning Kernels Based on
Centered Alignment", JMLR 13, 2012.

For features Z (n, D) and targets Y (n, C), K = Z Z', L = Y Y' and
H = I - 11'/n, the centred alignment is

    A = <HKH, HLH>_F / (||HKH||_F ||HLH||_F).

Since HKH = Zc Zc' with Zc = HZ (column-centred), it equals

    A = ||Zc' Yc||_F^2 / (||Zc' Zc||_F ||Yc' Yc||_F),

computed here without any n x n matrix (||Zc'Zc||_F = ||Zc Zc'||_F), summing the
D x D products over row blocks. A lies in [0, 1]; it is linear
CKA (Kornblith et al. 2019) with the targets as the second representation.

Targets: (n,) integer class labels (one-hot, one column per label) or an
(n, C) float matrix used as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .blocks import BLOCK_ROWS, centred_blocks, check_matrix
from .logme import as_target_matrix

__all__ = ["centered_kernel_alignment"]


def _linear_alignment(x: Any, y: Any, names: tuple[str, str] = ("a", "b"), block_rows: int = BLOCK_ROWS) -> float:
    """Centred alignment of the linear kernels of two (n, .) matrices, read in row blocks.

    ||Xc'Xc||_F equals ||Xc Xc'||_F; the D x D side is summed over blocks. Constant columns
    centre to exact zeros (see blocks.centred_blocks).
    """
    (_, dx), (_, dy) = check_matrix(x, names[0]), check_matrix(y, names[1])
    xx, yy, xy = np.zeros((dx, dx)), np.zeros((dy, dy)), np.zeros((dx, dy))
    for (_, bx), (_, by) in zip(centred_blocks(x, names[0], block_rows)(), centred_blocks(y, names[1], block_rows)()):
        xx += bx.T @ bx
        yy += by.T @ by
        xy += bx.T @ by
    denom = float(np.linalg.norm(xx)) * float(np.linalg.norm(yy))
    if denom == 0.0:
        return 0.0
    return float(np.clip(float(np.square(xy).sum()) / denom, 0.0, 1.0))


def centered_kernel_alignment(features: Any, targets: np.ndarray, *, block_rows: int = BLOCK_ROWS) -> float:
    """Centred alignment of K = Z Z' (features (n, D)) with L = Y Y' (targets (n,) or (n, C)).

    Returns 0.0 when the centred features or targets are all zero. Features are read in row
    blocks (any array, a memory map included).
    """
    n, _ = check_matrix(features, "features")
    y = as_target_matrix(targets)
    if y.shape[0] != n:
        raise ValueError(f"features have n={n} rows but targets have n={y.shape[0]}")
    return _linear_alignment(features, y, ("features", "targets"), block_rows)
