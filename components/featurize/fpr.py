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
(ties by id) or k-means++ seeding in the seed-mean kernel's feature space.

Rows are processed in blocks: memory is O(block_rows x (K d + m)) beyond the input and the (n, m)
output, never n x n, and the tables may be a memory map. For the cosine and dot kernels without a
spread block the mean over seeds is one matrix product per block,

    F[block] = [X_1 | ... | X_K] [A_1; ...; A_K]' / K      (rows of X_k, A_k unit for cosine),

so the K seeds cost one pass of a (block, K d) x (K d, m) matmul and the output is written once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reprflow.components.common.artifacts import read_json
from reprflow.components.common.errors import DataError

KERNELS = ("cosine", "dot", "rbf")
ANCHOR_RULES = ("frequency", "kmeans++")
MEDIAN_SAMPLE = 4096  # rows used for the rbf median heuristic (evenly strided, deterministic)
FIT_SAMPLE = 131072  # entities used to fit quantile bin edges (evenly strided)
BLOCK_ROWS = 16384


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


@dataclass(frozen=True)
class _SeedKernel:
    """k(., a) against one seed's anchors: the anchor rows (unit rows for cosine), their squared
    norms and the rbf bandwidth, all fixed by the seed's table.

    For rbf the rows and anchors are first moved by the anchors' mean (`centre`): |x - a|^2 does
    not change, and |x|^2 + |a|^2 - 2 x.a no longer cancels in float32 when the table sits far
    from the origin. The centre turns with the table, so orthogonal invariance is kept."""

    kernel: str
    anchors: np.ndarray  # (m, d) float32
    anchor_sq: np.ndarray  # (m,) float32
    bandwidth: float
    centre: np.ndarray | None = None  # (d,) float32, rbf only

    @classmethod
    def of(cls, table: np.ndarray, anchor_rows: np.ndarray, kernel: str) -> "_SeedKernel":
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r} (known: {', '.join(KERNELS)})")
        anchors = np.asarray(table[anchor_rows], dtype=np.float64)
        centre = None
        if kernel == "cosine":
            anchors = _unit_rows(anchors)
        elif kernel == "rbf":
            centre = anchors.mean(axis=0)
            anchors = anchors - centre
            centre = centre.astype(np.float32)
        h = rbf_bandwidth(table, anchor_rows) if kernel == "rbf" else 1.0
        return cls(kernel, anchors.astype(np.float32), (anchors**2).sum(1).astype(np.float32), h, centre)

    def block(self, rows: np.ndarray) -> np.ndarray:
        """S = k(rows, anchors) for a block of rows (b, d): (b, m) float32."""
        x = np.asarray(rows, dtype=np.float32)
        if self.kernel == "cosine":
            x = _unit_rows(x)
        elif self.centre is not None:
            x = x - self.centre
        s = x @ self.anchors.T
        if self.kernel == "rbf":
            sq = (x**2).sum(1, keepdims=True) + self.anchor_sq[None] - 2 * s
            s = np.exp(-np.maximum(sq, 0) / self.bandwidth)
        return s


def kernel_to_anchors(
    table: np.ndarray, anchor_rows: np.ndarray, kernel: str = "cosine", block_rows: int = BLOCK_ROWS
) -> np.ndarray:
    """S = k(table, table[anchor_rows]) for one seed, shape (n, m), float32, in row blocks."""
    seed = _SeedKernel.of(table, anchor_rows, kernel)
    out = np.empty((table.shape[0], len(anchor_rows)), dtype=np.float32)
    for start in range(0, table.shape[0], block_rows):
        out[start : start + block_rows] = seed.block(table[start : start + block_rows])
    return out


def _fused_mean_blocks(
    tables: np.ndarray, seeds: list[_SeedKernel], block_rows: int, out: np.ndarray | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """mean_k S_k block by block for the cosine and dot kernels: one matmul over all seeds, written
    into out[rows] when `out` (n, m) is given."""
    k, n, d = tables.shape
    weights = np.concatenate([s.anchors for s in seeds], axis=1).T / np.float32(k)  # (K d, m)
    buffer = np.empty((min(block_rows, n), k * d), dtype=np.float32)
    for start in range(0, n, block_rows):
        rows = slice(start, min(start + block_rows, n))
        x = buffer[: rows.stop - start]
        for i, table in enumerate(tables):
            source = np.asarray(table[rows], dtype=np.float32)
            part = x[:, i * d : (i + 1) * d]
            if seeds[i].kernel == "cosine":  # unit rows, written once; zero rows stay zero
                norm = np.sqrt(np.einsum("ij,ij->i", source, source))[:, None]
                np.divide(source, np.where(norm > 0, norm, 1), out=part)
            else:
                part[...] = source
        dest = out[rows] if out is not None else np.empty((len(x), weights.shape[1]), dtype=np.float32)
        yield rows, np.matmul(x, weights, out=dest)


def _seed_stat_blocks(
    tables: np.ndarray, seeds: list[_SeedKernel], spread: bool, block_rows: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """[mean_k S_k] or [mean_k S_k, std_k S_k] block by block, from the per-seed kernels."""
    n = tables.shape[1]
    for start in range(0, n, block_rows):
        rows = slice(start, min(start + block_rows, n))
        total = squares = 0.0
        for seed, table in zip(seeds, tables):
            s = seed.block(table[rows]).astype(np.float64)
            total = total + s
            squares = squares + s * s if spread else 0.0
        mean = total / len(seeds)
        if not spread:
            yield rows, mean.astype(np.float32)
            continue
        std = np.sqrt(np.maximum(squares / len(seeds) - mean**2, 0))
        yield rows, np.hstack([mean, std]).astype(np.float32)


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
        nearest[chosen] = 0.0  # rounding can leave a chosen one a tiny distance from itself
        if len(chosen) == m:
            return [str(ids[i]) for i in chosen]
        if nearest.sum() > 0:
            p = nearest / nearest.sum()
        else:  # only duplicates of the anchors are left: any entity not yet chosen
            p = np.ones(len(ids))
            p[chosen] = 0.0
            p /= p.sum()
        chosen.append(int(rng.choice(len(ids), p=p)))


def _self_kernel(table: np.ndarray, kernel: str) -> np.ndarray:
    if kernel == "dot":
        return (table.astype(np.float64) ** 2).sum(1)
    return np.ones(len(table))  # cosine and rbf: k(x, x) = 1 (cosine of a zero row is 0; rare)


def quantile_edges(features: np.ndarray, bins: int) -> np.ndarray:
    """(m, bins - 1) per-column quantile edges, each midway between the two order statistics it
    separates (s_(i-1) and s_(i), i = ceil(q N)): no fitted value sits on an edge, where float32
    rounding in another block size or seed order would flip its bin."""
    s = np.sort(np.asarray(features, dtype=np.float64), axis=0)
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    i = np.clip(np.ceil(qs * len(s)).astype(np.int64), 1, len(s) - 1)
    return (0.5 * (s[i - 1] + s[i])).T


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
        fit_rows: np.ndarray | None = None,
    ) -> "FPRFeaturizer":
        """Choose anchors; with `quantile_bins` > 1, fit bin edges on the entities of `tables` that the
        boolean mask `fit_rows` (n,) selects (default: all): the training entities, so that no test
        entity moves a training entity's features."""
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
            # edges from every stride-th entity, at most FIT_SAMPLE of them: a quantile needs no more
            fit = np.ones(len(ids), dtype=bool) if fit_rows is None else np.asarray(fit_rows, dtype=bool)
            if fit.shape != (len(ids),) or fit.sum() < 2:
                raise ValueError(f"fit_rows must be an ({len(ids)},) mask selecting at least 2 entities")
            stride = max(1, -(-int(fit.sum()) // FIT_SAMPLE))
            sample = np.concatenate([
                block[(np.arange(rows.start, rows.stop) % stride == 0) & fit[rows], :m]
                for rows, block in featurizer._feature_blocks(tables, ids, BLOCK_ROWS)
            ])
            edges = tuple(map(tuple, quantile_edges(sample, quantile_bins).tolist()))
            featurizer = cls(tuple(anchors), kernel, seed_spread, edges)
        return featurizer

    def anchor_rows(self, ids: Sequence[str]) -> np.ndarray:
        wanted = set(self.anchors)
        position = {e: i for i, e in enumerate(map(str, ids)) if e in wanted}
        missing = [a for a in self.anchors if a not in position]
        if missing:
            raise ValueError(f"{len(missing)} anchor(s) are not among the entities, e.g. {missing[0]!r}")
        return np.array([position[a] for a in self.anchors], dtype=np.int64)

    def transform_seeds(self, tables: np.ndarray, ids: Sequence[str], block_rows: int = BLOCK_ROWS) -> np.ndarray:
        """Per-seed kernel features S_k: (K, n, d) -> (K, n, m) (no spread block, no binning)."""
        rows = self.anchor_rows(ids)
        return np.stack([kernel_to_anchors(t, rows, self.kernel, block_rows) for t in tables])

    def _feature_blocks(
        self, tables: np.ndarray, ids: Sequence[str], block_rows: int, out: np.ndarray | None = None
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """The unbinned features, [mean_k S_k] (+ [std_k S_k]), a block of rows at a time (written
        into `out` where the computation allows it)."""
        rows = self.anchor_rows(ids)
        seeds = [_SeedKernel.of(t, rows, self.kernel) for t in tables]
        if self.kernel in ("cosine", "dot") and not self.seed_spread:
            return _fused_mean_blocks(tables, seeds, block_rows, out)
        return _seed_stat_blocks(tables, seeds, self.seed_spread, block_rows)

    def transform(self, tables: np.ndarray, ids: Sequence[str], block_rows: int = BLOCK_ROWS) -> np.ndarray:
        """F = mean over seeds of S_k (n, m), then [F, spread] and binning as fitted.

        tables (K, n, d) may be a memory map: it is read block_rows rows at a time."""
        m = len(self.anchors)
        out = np.empty((tables.shape[1], 2 * m if self.seed_spread else m), dtype=np.float32)
        edges = np.array(self.bin_edges) if self.bin_edges else None
        for rows, block in self._feature_blocks(tables, ids, block_rows, out):
            if edges is not None:
                block[:, :m] = apply_bins(block[:, :m], edges)
            if block.base is not out:
                out[rows] = block
        return out

    def to_dict(self) -> dict:
        return {"anchors": list(self.anchors), "kernel": self.kernel, "seed_spread": self.seed_spread,
                "bin_edges": [list(e) for e in self.bin_edges]}

    @classmethod
    def from_dict(cls, d: Any, source: str = "<featurizer>") -> "FPRFeaturizer":
        """The featurizer `to_dict` wrote; DataError naming `source` and the field for anything else."""
        if not isinstance(d, dict):
            raise DataError(f"{source}: must be a JSON object, got {type(d).__name__}")
        anchors, kernel = d.get("anchors"), d.get("kernel")
        if not (isinstance(anchors, list) and anchors and all(isinstance(a, str) for a in anchors)
                and len(set(anchors)) == len(anchors)):
            raise DataError(f"{source}: field 'anchors' must be a non-empty list of distinct entity ids")
        if kernel not in KERNELS:
            raise DataError(f"{source}: field 'kernel' must be one of {', '.join(KERNELS)}, got {kernel!r}")
        if not isinstance(d.get("seed_spread", False), bool):
            raise DataError(f"{source}: field 'seed_spread' must be true or false, got {d['seed_spread']!r}")
        edges = d.get("bin_edges", [])
        try:
            table = np.array(edges, dtype=np.float64)  # ragged or non-numeric lists raise
        except (TypeError, ValueError):
            table = None
        if edges and not (table is not None and table.ndim == 2 and table.shape[0] == len(anchors)
                          and table.shape[1] > 0 and np.isfinite(table).all() and (np.diff(table, axis=1) >= 0).all()):
            raise DataError(f"{source}: field 'bin_edges' must hold, per anchor, the same number of finite "
                            "ascending edges")
        return cls(tuple(anchors), kernel, d.get("seed_spread", False), tuple(tuple(e) for e in edges))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FPRFeaturizer":
        return cls.from_dict(read_json(path), str(path))
