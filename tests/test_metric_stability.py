"""Seed stability: k-NN overlap, linear CKA and the Procrustes residual."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reprflow.components.evaluate_predictability.metrics.stability import (
    knn_overlap,
    linear_cka,
    procrustes_residual,
    seed_stability,
)

RNG = np.random.default_rng(0)


def brute_force_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Full n x n cosine matrices; neighbours by (-similarity, index), self excluded."""

    def neighbour_sets(x: np.ndarray) -> list[set[int]]:
        norms = np.linalg.norm(x, axis=1)
        n = x.shape[0]
        sims = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if norms[i] > 0 and norms[j] > 0:
                    sims[i, j] = (x[i] / norms[i]) @ (x[j] / norms[j])
        order = [sorted((j for j in range(n) if j != i), key=lambda j: (-sims[i, j], j)) for i in range(n)]
        return [set(row[:k]) for row in order]

    na, nb = neighbour_sets(a), neighbour_sets(b)
    return float(np.mean([len(sa & sb) / k for sa, sb in zip(na, nb)]))


def test_identical_tables() -> None:
    a = RNG.normal(size=(80, 6))
    assert knn_overlap(a, a, k=5) == 1.0
    assert linear_cka(a, a) == pytest.approx(1.0, abs=1e-12)
    assert procrustes_residual(a, a) == pytest.approx(0.0, abs=1e-12)


def test_rotated_tables() -> None:
    a = RNG.normal(size=(80, 6))
    q = ortho_group.rvs(6, random_state=1)
    shift = RNG.normal(size=6)
    assert knn_overlap(a, a @ q, k=5) == 1.0  # cosine is rotation invariant (not translation invariant)
    assert linear_cka(a, a @ q + shift) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(a, 4.0 * a @ q + shift) == pytest.approx(1.0, abs=1e-12)
    assert procrustes_residual(a, a @ q + shift) == pytest.approx(0.0, abs=1e-12)
    # a noisy rotation: the residual is about the relative size of the noise
    noise = 0.05 * RNG.normal(size=a.shape)
    b = a @ q + noise
    assert procrustes_residual(a, b) == pytest.approx(
        np.linalg.norm(noise - noise.mean(0)) / np.linalg.norm(b - b.mean(0)), rel=0.1
    )
    assert procrustes_residual(a, 5.0 * a @ q) == pytest.approx(0.0, abs=1e-12)  # scale is not instability


def test_procrustes_is_symmetric_scale_free_and_scipys_disparity() -> None:
    from scipy.spatial import procrustes

    a = RNG.normal(size=(120, 6))
    b = 3.0 * a @ ortho_group.rvs(6, random_state=2) + RNG.normal(size=a.shape)  # other norm, other centre
    r = procrustes_residual(a, b)
    assert procrustes_residual(b, a) == pytest.approx(r, rel=1e-12)
    assert procrustes_residual(7.0 * a, 0.1 * b) == pytest.approx(r, rel=1e-12)
    # scipy standardises both and also fits a scale s: its disparity is 1 - t^2 where r^2 = 2 - 2t
    assert 1 - (1 - r**2 / 2) ** 2 == pytest.approx(procrustes(a, b)[2], rel=1e-10)
    ac, bc = a - a.mean(0), b - b.mean(0)  # closed form: sqrt(2 - 2 tr(S) / (||a|| ||b||))
    trace = np.linalg.svd(ac.T @ bc, compute_uv=False).sum()
    assert r == pytest.approx(np.sqrt(2 - 2 * trace / (np.linalg.norm(ac) * np.linalg.norm(bc))), rel=1e-10)
    tables = [a, b, a + RNG.normal(size=a.shape)]
    assert seed_stability(tables, k=5)["procrustes_residual"] == pytest.approx(
        seed_stability(tables[::-1], k=5)["procrustes_residual"], rel=1e-12)


def test_independent_tables() -> None:
    n, d, k = 400, 16, 10
    a, b = RNG.normal(size=(n, d)), RNG.normal(size=(n, d))
    # neighbour sets of independent tables are independent uniform k-subsets: E = k / (n - 1)
    assert knn_overlap(a, b, k=k) == pytest.approx(k / (n - 1), abs=0.01)
    assert linear_cka(a, b) < 0.1
    # residual^2 = 2 - 2 sum(sv(a'b)) / ||a||^2 -> 2 as n grows
    assert 1.2 < procrustes_residual(a, b) < np.sqrt(2)


def test_block_size_does_not_matter() -> None:
    a, b = RNG.normal(size=(101, 5)), RNG.normal(size=(101, 7))
    b[:, :5] += 3 * a
    values = [knn_overlap(a, b, k=4, block_rows=r) for r in (1, 7, 64, 1000)]
    assert values[0] > 0.2
    assert all(v == values[0] for v in values)


def test_matches_brute_force() -> None:
    a = RNG.normal(size=(40, 5))
    b = a + 0.5 * RNG.normal(size=(40, 5))
    for k in (1, 3, 39):
        assert knn_overlap(a, b, k=k, block_rows=6) == pytest.approx(brute_force_overlap(a, b, k), abs=1e-15)


def test_ties_and_zero_rows_break_by_lowest_index() -> None:
    # rows are standard basis vectors or zero: similarities are exactly 0 or 1, full of ties
    a = np.eye(4)[RNG.integers(0, 4, size=30)]
    b = np.eye(4)[RNG.integers(0, 4, size=30)]
    a[[3, 17]] = 0.0
    b[[5]] = 0.0
    for k in (2, 6, 12):
        got = knn_overlap(a, b, k=k, block_rows=7)
        assert got == pytest.approx(brute_force_overlap(a, b, k), abs=1e-15)
        assert got == knn_overlap(a, b, k=k, block_rows=30)


def test_seed_stability_averages_over_pairs() -> None:
    base = RNG.normal(size=(60, 5))
    tables = [base + s * RNG.normal(size=base.shape) for s in (0.1, 0.5, 1.0)]
    got = seed_stability(tables, k=5)
    assert set(got) == {"knn_overlap_at_5", "linear_cka", "procrustes_residual"}
    pairs = list(combinations(tables, 2))
    for key, fn in [("knn_overlap_at_5", lambda a, b: knn_overlap(a, b, k=5)), ("linear_cka", linear_cka),
                    ("procrustes_residual", procrustes_residual)]:
        assert got[key] == pytest.approx(np.mean([fn(a, b) for a, b in pairs]), rel=1e-12, abs=1e-15)
    assert "knn_overlap_at_10" in seed_stability(tables)


def test_bad_inputs_raise() -> None:
    a = RNG.normal(size=(20, 4))
    with pytest.raises(ValueError, match="n=20"):
        knn_overlap(a, a[:19])
    with pytest.raises(ValueError, match="n=20"):
        linear_cka(a, a[:19])
    with pytest.raises(ValueError, match="width"):
        procrustes_residual(a, RNG.normal(size=(20, 5)))
    with pytest.raises(ValueError, match="k"):
        knn_overlap(a, a, k=20)
    with pytest.raises(ValueError, match="k"):
        knn_overlap(a, a, k=0)
    with pytest.raises(ValueError, match="block_rows"):
        knn_overlap(a, a, block_rows=0)
    with pytest.raises(ValueError):
        knn_overlap(a[:, 0], a[:, 0])
    with pytest.raises(ValueError, match="at least 2"):
        seed_stability([a])
    with pytest.raises(ValueError, match="same shape"):
        seed_stability([a, a, RNG.normal(size=(20, 5))])
    with pytest.raises(ValueError, match="constant"):
        procrustes_residual(a, np.ones((20, 4)))
    bad = a.copy()
    bad[3, 1] = np.nan
    for fn in (knn_overlap, linear_cka, procrustes_residual):  # the argument that holds the NaN is named
        with pytest.raises(ValueError, match=r"^b contain NaN or inf"):
            fn(a, bad)
    with pytest.raises(ValueError, match=r"^tables\[2\] contain NaN or inf"):
        seed_stability([a, a, bad])


def test_nested_lists_are_tables_too() -> None:
    a, b = RNG.normal(size=(30, 4)), RNG.normal(size=(30, 4))
    for fn in (lambda x, y: knn_overlap(x, y, k=5), linear_cka, procrustes_residual):
        assert fn(a.tolist(), b.tolist()) == pytest.approx(fn(a, b), rel=1e-12)
    assert seed_stability([a.tolist(), b.tolist()], k=5) == pytest.approx(seed_stability([a, b], k=5), rel=1e-12)


def test_the_evaluate_stage_names_a_knn_k_the_items_cannot_meet(tmp_path) -> None:
    import json

    from reprflow.components.common.config import validate_config
    from reprflow.components.common.errors import ConfigError
    from reprflow.components.evaluate_predictability.run import run_evaluate
    from reprflow.components.featurize.run import REPRESENTATIONS

    for name in REPRESENTATIONS:
        np.save(tmp_path / f"{name}.npy", RNG.normal(size=(2, 8, 3)).astype(np.float32))
    (tmp_path / "ids.json").write_text(json.dumps([f"i{i}" for i in range(8)]))
    (tmp_path / "meta.json").write_text(json.dumps({"seeds": [0, 1]}))
    config = validate_config({"data": {"uri": "x.csv"}, "evaluate": {"knn_k": 8}})
    with pytest.raises(ConfigError, match=r"^field evaluate.knn_k: 8 neighbours need more than 8 items; the "
                                          r"embedding has 8$"):
        run_evaluate(str(tmp_path), "no-interactions", "no-items", config, str(tmp_path / "out.json"))
    assert not (tmp_path / "out.json").exists()
