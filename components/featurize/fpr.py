"""FPR: featurizing pretrained representations by their kernel to a fixed set of anchor entities.

For embedding tables E_1..E_K (each n x d, same entity order) and anchor ids A (m of them):

    S_k = k(E_k, E_k[A])            (n x m), cosine kernel: k(x, a) = x.a / (|x| |a|)
    F   = mean_k S_k                (n x m)

Cosine is built from inner products, so S_k is unchanged by any orthogonal transform of E_k:
the seed-to-seed rotation that pretraining cannot pin down disappears. Anchors are entity ids,
stored with the featurizer, so a later retrain is featurized against the same anchors. Rows are
processed in blocks: memory is O(block_rows x m) beyond the inputs, never n x n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

KERNELS = ("cosine",)


def select_anchors(ids: Sequence[str], counts: Sequence[int], m: int) -> list[str]:
    """The m most frequent entities, ties broken by id (deterministic for equal counts)."""
    if not 0 < m <= len(ids):
        raise ValueError(f"cannot choose {m} anchors from {len(ids)} entities")
    order = sorted(range(len(ids)), key=lambda i: (-int(counts[i]), str(ids[i])))
    return [str(ids[i]) for i in order[:m]]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def kernel_to_anchors(table: np.ndarray, anchor_rows: np.ndarray, block_rows: int = 65536) -> np.ndarray:
    """S = cos(table, table[anchor_rows]) for one seed, shape (n, m), float32, in row blocks."""
    anchors = _unit_rows(table[anchor_rows].astype(np.float64)).astype(np.float32)
    out = np.empty((table.shape[0], len(anchor_rows)), dtype=np.float32)
    for start in range(0, table.shape[0], block_rows):
        block = table[start : start + block_rows]
        out[start : start + block_rows] = _unit_rows(block.astype(np.float32)) @ anchors.T
    return out


@dataclass(frozen=True)
class FPRFeaturizer:
    """The fitted featurizer: everything `transform` needs, serialisable to JSON."""

    anchors: tuple[str, ...]
    kernel: str = "cosine"

    @classmethod
    def fit(cls, ids: Sequence[str], counts: Sequence[int], m: int, kernel: str = "cosine") -> "FPRFeaturizer":
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r} (known: {', '.join(KERNELS)})")
        return cls(tuple(select_anchors(ids, counts, m)), kernel)

    def anchor_rows(self, ids: Sequence[str]) -> np.ndarray:
        position = {str(e): i for i, e in enumerate(ids)}
        missing = [a for a in self.anchors if a not in position]
        if missing:
            raise ValueError(f"{len(missing)} anchor(s) are not among the entities, e.g. {missing[0]!r}")
        return np.array([position[a] for a in self.anchors], dtype=np.int64)

    def transform_seeds(self, tables: np.ndarray, ids: Sequence[str], block_rows: int = 65536) -> np.ndarray:
        """Per-seed features S_k: (K, n, d) -> (K, n, m)."""
        rows = self.anchor_rows(ids)
        return np.stack([kernel_to_anchors(t, rows, block_rows) for t in tables])

    def transform(self, tables: np.ndarray, ids: Sequence[str], block_rows: int = 65536) -> np.ndarray:
        """F = mean over seeds of S_k: (K, n, d) -> (n, m)."""
        rows = self.anchor_rows(ids)
        total = np.zeros((tables.shape[1], len(rows)), dtype=np.float64)
        for t in tables:
            total += kernel_to_anchors(t, rows, block_rows)
        return (total / len(tables)).astype(np.float32)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["anchors"] = list(self.anchors)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FPRFeaturizer":
        return cls(tuple(d["anchors"]), d["kernel"])


def leave_one_out_means(per_seed: np.ndarray) -> np.ndarray:
    """(K, n, m) -> (K, n, m): slice k is the mean over all seeds but k.

    The seed-mean featurizer has one output per set of seeds; these K overlapping (K-1)-seed
    means are what a retrain of the seed-mean features looks like with K seeds in hand.
    """
    k = per_seed.shape[0]
    if k < 2:
        raise ValueError("leave-one-out means need at least two seeds")
    total = per_seed.sum(axis=0, dtype=np.float64)
    return ((total[None] - per_seed) / (k - 1)).astype(np.float32)
