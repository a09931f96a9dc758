"""FPR: featurizing pretrained representations by their kernel to a fixed set of anchor entities.

For embedding tables E_1..E_K (each n x d, same entity order) and anchor ids A (m of them):

    S_k = k(E_k, E_k[A])            (n x m)
    F   = mean_k S_k                (n x m), optionally [F, std_k S_k] and quantile-binned

Kernels: cosine k(x, a) = x.a / (|x| |a|); dot k(x, a) = x.a; rbf k(x, a) = exp(-|x - a|^2 / h)
with h the median squared distance between the table's rows and its anchors (median heuristic,
taken per table so that a retrain at another scale gets the same treatment). All three are built
from inner products, so S_k is unchanged by any orthogonal transform of E_k: the seed-to-seed
rotation that pretraining cannot pin down disappears.

Anchors are entity ids stored with the featurizer (with the bin edges), so a later retrain is
featurized against the same anchors and keeps its meaning. They are the m most frequent entities
(ties by id) or k-means++ seeding in the seed-mean kernel's feature space. Rows are processed in
blocks: memory is O(block_rows x m) beyond the inputs, never n x n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

KERNELS = ("cosine", "dot", "rbf")
ANCHOR_RULES = ("frequency", "kmeans++")
MEDIAN_SAMPLE = 4096  # rows used for the rbf median heuristic (evenly strided, deterministic)


def select_anchors(ids: Sequence[str], counts: Sequence[int], m: int) -> list[str]:
    """The m most frequent entities, ties broken by id (deterministic for equal counts)."""
    if not 0 < m <= len(ids):
        raise ValueError(f"cannot choose {m} anchors from {len(ids)} entities")
    order = sorted(range(len(ids)), key=lambda i: (-int(counts[i]), str(ids[i])))
    return [str(ids[i]) for i in order[:m]]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def rbf_bandwidth(table: np.ndarray, anchor_rows: np.ndarray) -> float:
    """Median squared distance between (a strided sample of) the rows and the anchors."""
    sample = table[:: max(1, len(table) // MEDIAN_SAMPLE)].astype(np.float64)
    anchors = table[anchor_rows].astype(np.float64)
    sq = (sample**2).sum(1)[:, None] + (anchors**2).sum(1)[None] - 2 * sample @ anchors.T
    h = float(np.median(np.maximum(sq, 0)))
    return h if h > 0 else 1.0


def kernel_to_anchors(
    table: np.ndarray, anchor_rows: np.ndarray, kernel: str = "cosine", block_rows: int = 65536
) -> np.ndarray:
    """S = k(table, table[anchor_rows]) for one seed, shape (n, m), float32, in row blocks."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r} (known: {', '.join(KERNELS)})")
    anchors = table[anchor_rows].astype(np.float32)
    if kernel == "cosine":
        anchors = _unit_rows(anchors)
    h = rbf_bandwidth(table, anchor_rows) if kernel == "rbf" else 1.0
    anchor_sq = (anchors.astype(np.float64) ** 2).sum(1).astype(np.float32)
    out = np.empty((table.shape[0], len(anchor_rows)), dtype=np.float32)
    for start in range(0, table.shape[0], block_rows):
        block = table[start : start + block_rows].astype(np.float32)
        if kernel == "cosine":
            block = _unit_rows(block)
        s = block @ anchors.T
        if kernel == "rbf":
            sq = (block**2).sum(1, keepdims=True) + anchor_sq[None] - 2 * s
            s = np.exp(-np.maximum(sq, 0) / h)
        out[start : start + block_rows] = s
    return out


def kmeanspp_anchors(tables: np.ndarray, ids: Sequence[str], counts: Sequence[int], m: int, kernel: str) -> list[str]:
    """k-means++ seeding in the feature space of the seed-mean kernel K = mean_k K_k.

    d^2(i, j) = K(i, i) + K(j, j) - 2 K(i, j). The first anchor is the most frequent entity; each
    next one is drawn with probability proportional to d^2 to the nearest anchor so far (a fixed
    generator: the same inputs give the same anchors).
    """
    if not 0 < m <= len(ids):
        raise ValueError(f"cannot choose {m} anchors from {len(ids)} entities")
    ids = [str(i) for i in ids]
    rng = np.random.default_rng(0)
    chosen = [ids.index(select_anchors(ids, counts, 1)[0])]
    diag = np.mean([_self_kernel(t, kernel) for t in tables], axis=0)
    nearest = np.full(len(ids), np.inf)
    while True:
        column = np.mean([kernel_to_anchors(t, np.array(chosen[-1:]), kernel)[:, 0] for t in tables], axis=0)
        nearest = np.minimum(nearest, np.maximum(diag + diag[chosen[-1]] - 2 * column, 0))
        if len(chosen) == m:
            return [str(ids[i]) for i in chosen]
        p = nearest / nearest.sum() if nearest.sum() > 0 else np.full(len(ids), 1 / len(ids))
        chosen.append(int(rng.choice(len(ids), p=p)))


def _self_kernel(table: np.ndarray, kernel: str) -> np.ndarray:
    if kernel == "dot":
        return (table.astype(np.float64) ** 2).sum(1)
    return np.ones(len(table))  # cosine and rbf: k(x, x) = 1 (cosine of a zero row is 0; rare)


def quantile_edges(features: np.ndarray, bins: int) -> np.ndarray:
    """(m, bins - 1) per-column quantile edges."""
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    return np.quantile(features, qs, axis=0).T.astype(np.float64)


def apply_bins(features: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Replace each value by its bin index scaled to [0, 1] (bin / (bins - 1))."""
    out = np.empty(features.shape, dtype=np.float32)
    for j in range(features.shape[1]):
        out[:, j] = np.searchsorted(edges[j], features[:, j], side="right")
    return out / max(1, edges.shape[1])


@dataclass(frozen=True)
class FPRFeaturizer:
    """The fitted featurizer: everything `transform` needs, serialisable to JSON."""

    anchors: tuple[str, ...]
    kernel: str = "cosine"
    seed_spread: bool = False
    bin_edges: tuple[tuple[float, ...], ...] = field(default=())  # empty: no binning

    @classmethod
    def fit(
        cls,
        ids: Sequence[str],
        counts: Sequence[int],
        m: int,
        kernel: str = "cosine",
        *,
        tables: np.ndarray | None = None,
        anchor_rule: str = "frequency",
        seed_spread: bool = False,
        quantile_bins: int = 0,
    ) -> "FPRFeaturizer":
        """Choose anchors; with `quantile_bins` > 1, fit bin edges on all entities of `tables`.

        Binning edges come from the unlabelled entities, so fitting them leaks no label."""
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r} (known: {', '.join(KERNELS)})")
        if anchor_rule not in ANCHOR_RULES:
            raise ValueError(f"unknown anchor rule {anchor_rule!r} (known: {', '.join(ANCHOR_RULES)})")
        if (anchor_rule == "kmeans++" or quantile_bins > 1) and tables is None:
            raise ValueError("k-means++ anchors and quantile binning need the embedding tables")
        ids = [str(i) for i in ids]
        if anchor_rule == "frequency":
            anchors = select_anchors(ids, counts, m)
        else:
            anchors = kmeanspp_anchors(tables, ids, counts, m, kernel)
        featurizer = cls(tuple(anchors), kernel, seed_spread)
        if quantile_bins > 1:
            edges = quantile_edges(featurizer._blocks(tables, ids, 65536)[:, :m], quantile_bins)
            featurizer = cls(tuple(anchors), kernel, seed_spread, tuple(map(tuple, edges.tolist())))
        return featurizer

    def anchor_rows(self, ids: Sequence[str]) -> np.ndarray:
        position = {str(e): i for i, e in enumerate(ids)}
        missing = [a for a in self.anchors if a not in position]
        if missing:
            raise ValueError(f"{len(missing)} anchor(s) are not among the entities, e.g. {missing[0]!r}")
        return np.array([position[a] for a in self.anchors], dtype=np.int64)

    def transform_seeds(self, tables: np.ndarray, ids: Sequence[str], block_rows: int = 65536) -> np.ndarray:
        """Per-seed kernel features S_k: (K, n, d) -> (K, n, m) (no spread block, no binning)."""
        rows = self.anchor_rows(ids)
        return np.stack([kernel_to_anchors(t, rows, self.kernel, block_rows) for t in tables])

    def _blocks(self, tables: np.ndarray, ids: Sequence[str], block_rows: int) -> np.ndarray:
        """[mean_k S_k] or [mean_k S_k, std_k S_k], one seed at a time (Welford-free: two sums)."""
        rows = self.anchor_rows(ids)
        total = np.zeros((tables.shape[1], len(rows)), dtype=np.float64)
        squares = np.zeros_like(total) if self.seed_spread else None
        for t in tables:
            s = kernel_to_anchors(t, rows, self.kernel, block_rows)
            total += s
            if squares is not None:
                squares += s.astype(np.float64) ** 2
        mean = total / len(tables)
        if squares is None:
            return mean.astype(np.float32)
        std = np.sqrt(np.maximum(squares / len(tables) - mean**2, 0))
        return np.hstack([mean, std]).astype(np.float32)

    def transform(self, tables: np.ndarray, ids: Sequence[str], block_rows: int = 65536) -> np.ndarray:
        """F = mean over seeds of S_k (n, m), then [F, spread] and binning as fitted."""
        features = self._blocks(tables, ids, block_rows)
        if self.bin_edges:
            m = len(self.anchors)
            features[:, :m] = apply_bins(features[:, :m], np.array(self.bin_edges))
        return features

    def to_dict(self) -> dict:
        return {"anchors": list(self.anchors), "kernel": self.kernel, "seed_spread": self.seed_spread,
                "bin_edges": [list(e) for e in self.bin_edges]}

    @classmethod
    def from_dict(cls, d: dict) -> "FPRFeaturizer":
        return cls(tuple(d["anchors"]), d["kernel"], bool(d.get("seed_spread", False)),
                   tuple(tuple(e) for e in d.get("bin_edges", ())))
