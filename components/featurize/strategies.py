"""The other representation strategies every comparison includes (DESIGN.md).

- aligned: each seed's raw table rotated onto a reference seed's by orthogonal Procrustes on the
  anchor rows: R_k = argmin_{R'R = I} ||E_k[A] R - E_ref[A]||_F = U V' with E_k[A]' E_ref[A] = U S V'.
- concat: the seeds' tables side by side.
- leave_one_out: with K seeds in hand, a strategy that consumes several seeds (a mean, a
  concatenation, an ensemble) is retrained K times, each time without one seed: K overlapping
  (K-1)-seed versions whose spread and churn stand for a retrain.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def procrustes_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal R minimising ||source R - target||_F (d x d)."""
    u, _, vt = np.linalg.svd(source.astype(np.float64).T @ target.astype(np.float64))
    return u @ vt


def align_to_reference(tables: np.ndarray, anchor_rows: np.ndarray, reference: int = 0) -> np.ndarray:
    """(K, n, d) -> (K, n, d): every table rotated onto tables[reference] using the anchors only."""
    target = tables[reference][anchor_rows]
    return np.stack([t @ procrustes_rotation(t[anchor_rows], target).astype(np.float32) for t in tables])


def leave_one_out(tables: np.ndarray, combine: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(K, n, d) -> (K, n, D): slice k is combine(all tables but k)."""
    if tables.shape[0] < 2:
        raise ValueError("leave-one-out needs at least two seeds")
    return np.stack([combine(np.delete(tables, k, axis=0)) for k in range(tables.shape[0])])


def concat(tables: np.ndarray) -> np.ndarray:
    """(K, n, d) -> (n, K d)."""
    return np.concatenate(list(tables), axis=1)
