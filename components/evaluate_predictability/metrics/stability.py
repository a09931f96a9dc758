"""Stability of embedding tables across pretraining seeds.

Tables a (n, Da), b (n, Db) hold embeddings of the same n entities, row i of
each being entity i.

k-NN overlap (e.g. Antoniak & Mimno, "Evaluating the Stability of
Embedding-based Word Similarities", TACL 2018; Wendlandt et al., NAACL 2018):
N_a(i) are the k rows of a with the highest cosine similarity to row i
(excluding i; zero rows have cosine 0 with everything; ties go to the lower
row index), and

    overlap@k = mean_i |N_a(i) ∩ N_b(i)| / k.

For independent tables its expectation is k / (n - 1). Similarities are formed
block_rows rows at a time, never as an n x n matrix.

Linear CKA (Kornblith, Norouzi, Lee, Hinton, "Similarity of Neural Network
Representations Revisited", ICML 2019), with column-centred Xc, Yc:

    CKA = ||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F).

Orthogonal Procrustes residual (Schönemann 1966), same widths, centred a, b,
each scaled to unit Frobenius norm (as scipy.spatial.procrustes does):

    R* = argmin_{R'R = I} ||a R - b||_F = U V'  where a'b = U S V',
    residual = || a R* / ||a||_F - b / ||b||_F ||_F = sqrt(2 - 2 tr(S) / (||a||_F ||b||_F)),

symmetric in a and b and unchanged by scaling either, so it measures rotation
alone; it lies in [0, sqrt 2].

seed_stability averages all three over the unordered pairs of seed tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from .blocks import BLOCK_ROWS, centred_blocks, check_matrix, dense_matrix
from .kernel_alignment import _linear_alignment

__all__ = ["knn_overlap", "linear_cka", "procrustes_residual", "seed_stability"]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _neighbours(unit: np.ndarray, start: int, stop: int, k: int) -> np.ndarray:
    """(stop - start, k) sorted indices of each block row's k most cosine-similar other rows."""
    sims = unit[start:stop] @ unit.T
    rows = np.arange(stop - start)
    sims[rows, start + rows] = -np.inf
    n = sims.shape[1]
    kth = np.partition(sims, n - k, axis=1)[:, n - k, None]  # k-th largest per row
    above = sims > kth
    ties = sims == kth
    # fill the remaining slots with the lowest-indexed ties, so the choice is deterministic
    need = k - above.sum(axis=1, keepdims=True)
    chosen = above | (ties & (np.cumsum(ties, axis=1) <= need))
    return np.nonzero(chosen)[1].reshape(-1, k)


def _knn_overlaps(
    tables: Sequence[Any], names: Sequence[str], pairs: Sequence[tuple[int, int]], k: int, block_rows: int
) -> np.ndarray:
    """Mean k-NN overlap for each pair of tables; each table's neighbours are found once per block."""
    n = check_matrix(tables[0], names[0])[0]
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= n - 1):
        raise ValueError(f"k must be an integer in [1, n - 1] = [1, {n - 1}], got {k}")
    if not (isinstance(block_rows, (int, np.integer)) and block_rows >= 1):
        raise ValueError(f"block_rows must be a positive integer, got {block_rows}")
    units = [_unit_rows(dense_matrix(t, name)) for t, name in zip(tables, names)]
    shared = np.zeros(len(pairs))
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        nbrs = [_neighbours(u, start, stop, k) for u in units]
        for p, (i, j) in enumerate(pairs):
            # each row's two index sets have no repeats, so equal neighbours after sorting = intersection
            merged = np.sort(np.concatenate([nbrs[i], nbrs[j]], axis=1), axis=1)
            shared[p] += np.count_nonzero(merged[:, 1:] == merged[:, :-1])
    return shared / (n * k)


def _pair(a: Any, b: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (n, D) shapes of a and b, which must have the same rows."""
    shape_a, shape_b = check_matrix(a, "a"), check_matrix(b, "b")
    if shape_a[0] != shape_b[0]:
        raise ValueError(f"tables must have the same rows (entities), got n={shape_a[0]} and n={shape_b[0]}")
    return shape_a, shape_b


def knn_overlap(a: Any, b: Any, k: int = 10, block_rows: int = 1024) -> float:
    """Mean over entities of |N_a ∩ N_b| / k for cosine k-nearest neighbours (self excluded)."""
    _pair(a, b)
    return float(_knn_overlaps([a, b], ["a", "b"], [(0, 1)], k, block_rows)[0])


def linear_cka(a: Any, b: Any, *, block_rows: int = BLOCK_ROWS) -> float:
    """Linear CKA between tables a (n, Da) and b (n, Db); 0.0 if either is constant. Row blocks."""
    _pair(a, b)
    return _linear_alignment(a, b, ("a", "b"), block_rows)


def procrustes_residual(a: Any, b: Any, *, block_rows: int = BLOCK_ROWS) -> float:
    """||a R* / ||a|| - b / ||b|| ||_F after centring, R* the best orthogonal map; a, b both (n, D).

    Three passes over row blocks (means, then a'b and the norms, then the residual), so the tables
    may be memory maps; the residual is summed exactly rather than expanded into 2 - 2 tr(S) / ..,
    which would lose it to cancellation for nearly aligned tables."""
    shape_a, shape_b = _pair(a, b)
    if shape_a != shape_b:
        raise ValueError(f"Procrustes needs tables of the same width, got {shape_a} and {shape_b}")
    d = shape_a[1]
    a_blocks, b_blocks = centred_blocks(a, "a", block_rows), centred_blocks(b, "b", block_rows)
    cross, a_sq, b_sq = np.zeros((d, d)), 0.0, 0.0
    for (_, ba), (_, bb) in zip(a_blocks(), b_blocks()):
        cross += ba.T @ bb
        a_sq += float(np.einsum("ij,ij->", ba, ba))
        b_sq += float(np.einsum("ij,ij->", bb, bb))
    for name, sq in (("a", a_sq), ("b", b_sq)):
        if sq == 0.0:
            raise ValueError(f"{name} is constant (all zero after centring); the residual is undefined")
    u, _, vt = np.linalg.svd(cross)
    rotation = u @ (vt / np.sqrt(a_sq))
    scale_b = 1.0 / np.sqrt(b_sq)
    residual = sum(float(np.square(ba @ rotation - bb * scale_b).sum())
                   for (_, ba), (_, bb) in zip(a_blocks(), b_blocks()))
    return float(np.sqrt(residual))


def seed_stability(tables: Sequence[np.ndarray], k: int = 10, *, block_rows: int = 1024) -> dict[str, float]:
    """k-NN overlap, linear CKA and Procrustes residual, each averaged over all pairs of tables."""
    if len(tables) < 2:
        raise ValueError(f"need at least 2 tables, got {len(tables)}")
    names = [f"tables[{i}]" for i in range(len(tables))]
    shapes = [check_matrix(t, name) for t, name in zip(tables, names)]
    if any(shape != shapes[0] for shape in shapes):
        raise ValueError(f"all tables must have the same shape, got {shapes}")
    pairs = list(combinations(range(len(tables)), 2))
    return {
        f"knn_overlap_at_{k}": float(_knn_overlaps(tables, names, pairs, k, block_rows).mean()),
        "linear_cka": float(np.mean([linear_cka(tables[i], tables[j]) for i, j in pairs])),
        "procrustes_residual": float(np.mean([procrustes_residual(tables[i], tables[j]) for i, j in pairs])),
    }
