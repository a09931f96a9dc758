"""Metrics that are linear in n read their features in row blocks: the same result whatever the
block size, and memory that does not grow with a copy of the features (a float32 memory map in)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from reprflow.components.evaluate_predictability.metrics.hscore import hscore, regularized_hscore
from reprflow.components.evaluate_predictability.metrics.kernel_alignment import centered_kernel_alignment
from reprflow.components.evaluate_predictability.metrics.kernel_ridge_gcv import kernel_ridge_gcv
from reprflow.components.evaluate_predictability.metrics.logme import logme
from reprflow.components.evaluate_predictability.metrics.stability import linear_cka, procrustes_residual
from reprflow.components.evaluate_predictability.metrics.transrate import coding_rate, transrate

# name -> metric(features, labels, block_rows); the pairwise ones compare features with a rotation of them
METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "logme": lambda f, y, b: logme(f, y, block_rows=b).score,
    "kernel_alignment": lambda f, y, b: centered_kernel_alignment(f, y, block_rows=b),
    "ridge_gcv": lambda f, y, b: kernel_ridge_gcv(f, y, block_rows=b).score,
    "hscore": lambda f, y, b: hscore(f, y, block_rows=b),
    "regularized_hscore": lambda f, y, b: regularized_hscore(f, y, block_rows=b),
    "transrate": lambda f, y, b: transrate(f, y, block_rows=b),
    "coding_rate": lambda f, y, b: coding_rate(f, block_rows=b),
    "linear_cka": lambda f, y, b: linear_cka(f, f[:, ::-1], block_rows=b),
    "procrustes_residual": lambda f, y, b: procrustes_residual(f, np.sqrt(np.abs(f)), block_rows=b),
}


def labelled(n: int, d: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    return rng.normal(size=(c, d))[y] + rng.normal(size=(n, d)) + 3.0, y


@pytest.mark.parametrize("name", METRICS)
def test_blockwise_equals_whole(name: str) -> None:
    f, y = labelled(501, 12, 4, seed=1)
    whole = METRICS[name](f, y, 10**6)
    for block_rows in (1, 7, 100):
        assert METRICS[name](f, y, block_rows) == pytest.approx(whole, rel=1e-9, abs=1e-12), block_rows


SINGLE_INPUT = [name for name in METRICS if name not in ("linear_cka", "procrustes_residual")]


@pytest.mark.parametrize("name", SINGLE_INPUT)
def test_memory_map_in_bounded_memory_out(name: str, tmp_path: Path) -> None:
    n, d = 200_000, 64
    f, y = labelled(n, d, 5, seed=2)
    path = tmp_path / "features.npy"
    np.save(path, f.astype(np.float32))
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    in_memory = METRICS[name](np.asarray(mapped, dtype=np.float64), y, 4096)
    tracemalloc.start()
    try:
        value = METRICS[name](mapped, y, 4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert value == pytest.approx(in_memory, rel=1e-9)
    one_copy = n * d * 8
    # the labels (n) and their one-hot columns (n x 5) are in memory on purpose; a copy of the
    # features would be 102 MB
    assert peak < one_copy / 4, f"{name}: peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("name", ["linear_cka", "procrustes_residual"])
def test_pairwise_metrics_read_both_tables_in_blocks(name: str, tmp_path: Path) -> None:
    n, d = 200_000, 64
    a, _ = labelled(n, d, 5, seed=3)
    b = a @ np.linalg.qr(np.random.default_rng(4).normal(size=(d, d)))[0] + 0.1 * np.random.default_rng(5).normal(size=(n, d))
    paths = []
    for name_, table in (("a", a), ("b", b)):
        paths.append(tmp_path / f"{name_}.npy")
        np.save(paths[-1], table.astype(np.float32))
    ma, mb = (np.load(p, mmap_mode="r", allow_pickle=False) for p in paths)
    fn = linear_cka if name == "linear_cka" else procrustes_residual
    want = fn(np.asarray(ma, dtype=np.float64), np.asarray(mb, dtype=np.float64))
    tracemalloc.start()
    try:
        got = fn(ma, mb, block_rows=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == pytest.approx(want, rel=1e-9)
    assert peak < n * d * 8 / 4, f"{name}: peak {peak / 2**20:.1f} MiB"
