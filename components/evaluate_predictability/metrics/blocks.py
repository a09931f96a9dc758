"""Row blocks: the metrics that are linear in n read their (n, D) features a block of rows at a time.

Features may be any array with a shape and row slicing (an ndarray, an ``np.load(..., mmap_mode="r")``
memory map of float32): each block is converted to float64 on its own, so memory beyond the input
is O(block_rows x D + D^2), whatever n is, and no n x n matrix is ever formed.

Two reductions cover every metric here:

- the Gram matrix X'X (and cross products X'Y), summed over blocks; used where the reference
  algorithm itself squares the condition number (LogME, kernel alignment, CKA);
- the R factor of a tall QR, X = QR, by TSQR (Demmel, Grigori, Hoemmen, Langou, "Communication-
  optimal parallel and sequential QR and LU factorizations", SIAM J. Sci. Comput. 34, 2012):
  R_{b} = qr([R_{b-1}; X_b]). R'R = X'X without ever forming X'X, so singular values near zero stay
  near zero (H-score, TransRate, ridge GCV). Any R with R'R = X'X equals the direct one up to the
  signs of its rows, which no metric depends on.

Centring uses a first pass for the column means: a second read of the rows, never a copy of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

BLOCK_ROWS = 16384


def check_matrix(x: Any, name: str) -> tuple[int, int]:
    """(n, D) of a non-empty 2-D numeric array; ValueError naming `name` otherwise. Reads no rows."""
    shape = getattr(x, "shape", None)
    if shape is None:
        x = np.asarray(x)
        shape = x.shape
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n, D) matrix, got shape {tuple(shape)}")
    dtype = getattr(x, "dtype", None)
    if dtype is not None and not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise ValueError(f"{name} must be numeric, got dtype {dtype}")
    return int(shape[0]), int(shape[1])


def dense_matrix(x: Any, name: str) -> np.ndarray:
    """A finite float64 copy of all of x (n, D), for the computations that need every row at once."""
    check_matrix(x, name)
    m = np.array(x, dtype=np.float64)
    if not np.isfinite(m).all():
        raise ValueError(f"{name} contain NaN or inf")
    return m


def _check_block_rows(block_rows: int) -> int:
    if not (isinstance(block_rows, (int, np.integer)) and block_rows >= 1):
        raise ValueError(f"block_rows must be a positive integer, got {block_rows}")
    return int(block_rows)


def row_blocks(
    x: Any, name: str, block_rows: int = BLOCK_ROWS, shift: np.ndarray | None = None, check_finite: bool = True
) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, float64 block) pairs in row order; `shift` (D,) is subtracted. Non-finite values raise
    (unless `check_finite` is False: the caller checks a product that any NaN or inf reaches).

    Without `shift`, a block of a float64 array is a view of it: read it, do not write to it."""
    n, _ = check_matrix(x, name)
    step = _check_block_rows(block_rows)
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        block = np.asarray(x[rows], dtype=np.float64) if shift is None else np.array(x[rows], dtype=np.float64)
        if check_finite and not np.isfinite(block).all():
            raise ValueError(f"{name} contain NaN or inf (rows {rows.start}-{rows.stop - 1})")
        if shift is not None:
            block -= shift
        yield rows, block


def column_stats(x: Any, name: str, block_rows: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Column means and a mask of the constant columns (max == min), in one pass."""
    n, d = check_matrix(x, name)
    total = np.zeros(d)
    low, high = np.full(d, np.inf), np.full(d, -np.inf)
    for _, block in row_blocks(x, name, block_rows):
        total += block.sum(axis=0)
        np.minimum(low, block.min(axis=0), out=low)
        np.maximum(high, block.max(axis=0), out=high)
    return total / n, high == low


def centred_blocks(
    x: Any, name: str, block_rows: int = BLOCK_ROWS
) -> Callable[[], Iterator[tuple[slice, np.ndarray]]]:
    """A re-iterable source of the column-centred blocks; constant columns are exactly zero.

    (A constant column's centred values are rounding noise otherwise, which a normalised metric
    would magnify into a signal.)"""
    mean, constant = column_stats(x, name, block_rows)

    def blocks() -> Iterator[tuple[slice, np.ndarray]]:
        for rows, block in row_blocks(x, name, block_rows, shift=mean):
            block[:, constant] = 0.0
            yield rows, block

    return blocks


def gram(x: Any, name: str, block_rows: int = BLOCK_ROWS, cross: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray | None]:
    """X'X (D, D) of x (n, D) and, given `cross` (n, C), cross'X (C, D), summed over row blocks.

    X'X is NumPy's matmul, which BLAS computes as a half-flop symmetric rank-k update with its own
    threads. Measured here and not taken: row shares summed in Python threads with a one-thread
    BLAS (14 % faster alone, but slower right after any threaded BLAS call, whose idle threads
    spin for about 0.1 s), column-split products, and scipy.linalg.blas (a second OpenBLAS build
    whose thread pool spins against NumPy's).

    Any NaN or inf in x reaches X'X, so only the (D, D) result is checked; ValueError names `name`.
    """
    _, d = check_matrix(x, name)
    g = np.zeros((d, d))
    c = None if cross is None else np.zeros((cross.shape[1], d))
    for rows, block in row_blocks(x, name, block_rows, check_finite=False):
        g += block.T @ block
        if c is not None:
            c += cross[rows].T @ block
    if not np.isfinite(g).all():
        raise ValueError(f"{name} contain NaN or inf (or values too large to square)")
    return g, c


def r_factor(blocks: Iterator[tuple[slice, np.ndarray]], width: int) -> np.ndarray:
    """The upper-triangular R (min(n, width), width) of a tall QR of the stacked blocks, by TSQR."""
    r = np.empty((0, width))
    for _, block in blocks:
        r = np.linalg.qr(np.vstack([r, block]), mode="r")
    return r
