"""FPR: the invariances DESIGN.md requires for every kernel and option, and the anchor rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reprflow.components.common.errors import DataError
from reprflow.components.featurize.fpr import (
    FPRFeaturizer,
    apply_bins,
    kernel_to_anchors,
    kmeanspp_anchors,
    quantile_edges,
    select_anchors,
)
from reprflow.components.featurize.strategies import align_to_reference, concat, leave_one_out

RNG = np.random.default_rng(0)
K, N, D, M = 3, 300, 16, 20
TABLES = RNG.normal(size=(K, N, D)).astype(np.float32)
IDS = [f"item{i:04d}" for i in range(N)]
COUNTS = RNG.integers(1, 50, size=N)
FEAT = FPRFeaturizer.fit(IDS, COUNTS, M)


def test_anchors_are_most_frequent_with_ties_by_id() -> None:
    assert select_anchors(["b", "a", "c", "d"], [5, 5, 9, 1], 3) == ["c", "a", "b"]
    order = np.lexsort((np.array(IDS), -COUNTS))[:M]
    assert list(FEAT.anchors) == [IDS[i] for i in order]
    with pytest.raises(ValueError):
        select_anchors(["a"], [1], 2)


VARIANTS = [
    FEAT,
    FPRFeaturizer.fit(IDS, COUNTS, M, "dot"),
    FPRFeaturizer.fit(IDS, COUNTS, M, "rbf", seed_spread=True),
    FPRFeaturizer.fit(IDS, COUNTS, M, "cosine", tables=TABLES, anchor_rule="kmeans++"),
]


@pytest.mark.parametrize("feat", VARIANTS, ids=["cosine", "dot", "rbf+spread", "kmeans++"])
def test_invariant_to_orthogonal_transform_of_any_seed(feat: FPRFeaturizer) -> None:
    rotated = TABLES.copy()
    rotated[1] = TABLES[1] @ ortho_group.rvs(D, random_state=1).astype(np.float32)
    np.testing.assert_allclose(feat.transform_seeds(rotated, IDS), feat.transform_seeds(TABLES, IDS), atol=1e-4)
    np.testing.assert_allclose(feat.transform(rotated, IDS), feat.transform(TABLES, IDS), atol=1e-4)


@pytest.mark.parametrize("feat", VARIANTS, ids=["cosine", "dot", "rbf+spread", "kmeans++"])
def test_every_variant_is_seed_order_invariant_and_blockwise_exact(feat: FPRFeaturizer) -> None:
    whole = feat.transform(TABLES, IDS)
    # float32 output: equal up to float32 rounding at the scale of the values (dot kernel ~ 10)
    scale = max(1.0, float(np.abs(whole).max()))
    np.testing.assert_allclose(feat.transform(TABLES[[1, 2, 0]], IDS), whole, atol=1e-5 * scale)
    np.testing.assert_allclose(feat.transform(TABLES, IDS, block_rows=13), whole, atol=1e-6 * scale)


def test_kernel_closed_forms() -> None:
    rows = FEAT.anchor_rows(IDS)
    e = TABLES[0].astype(np.float64)
    np.testing.assert_allclose(kernel_to_anchors(TABLES[0], rows, "dot"), e @ e[rows].T, rtol=1e-4, atol=1e-4)
    sq = ((e[:, None, :] - e[rows][None]) ** 2).sum(-1)
    rbf = kernel_to_anchors(TABLES[0], rows, "rbf")
    h = np.median(sq[:: max(1, N // 4096)])
    np.testing.assert_allclose(rbf, np.exp(-sq / h), atol=1e-5)
    assert np.allclose(rbf[rows, np.arange(M)], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="unknown kernel"):
        kernel_to_anchors(TABLES[0], rows, "laplace")


def test_seed_spread_block_is_the_std_over_seeds() -> None:
    feat = FPRFeaturizer.fit(IDS, COUNTS, M, seed_spread=True)
    per_seed = feat.transform_seeds(TABLES, IDS)
    out = feat.transform(TABLES, IDS)
    np.testing.assert_allclose(out[:, :M], per_seed.mean(0), atol=1e-5)
    np.testing.assert_allclose(out[:, M:], per_seed.std(0), atol=1e-5)
    np.testing.assert_allclose(feat.transform(TABLES[[0, 0, 0]], IDS)[:, M:], 0, atol=1e-3)


def test_quantile_binning_is_fitted_once_and_stored() -> None:
    feat = FPRFeaturizer.fit(IDS, COUNTS, M, tables=TABLES, quantile_bins=4)
    out = feat.transform(TABLES, IDS)
    np.testing.assert_allclose(np.unique(out), [0, 1 / 3, 2 / 3, 1], atol=1e-6)
    # Quartile bins of the fitted data are (close to) equally full in every column.
    counts = np.stack([np.bincount((out[:, j] * 3).round().astype(int), minlength=4) for j in range(M)])
    assert np.all(np.abs(counts - N / 4) <= 2)
    again = FPRFeaturizer.from_dict(feat.to_dict())
    assert again == feat and np.array_equal(again.transform(TABLES, IDS), out)
    edges = quantile_edges(np.arange(10.0)[:, None], 2)
    assert apply_bins(np.array([[0.0], [4.4], [4.6], [9.0]]), edges).ravel().tolist() == [0, 0, 1, 1]
    # 11 values: the median is a data value, the edge lies midway between it and the next one
    assert quantile_edges(np.arange(11.0)[:, None], 2).tolist() == [[5.5]]


def test_bin_edges_come_from_the_training_entities_only() -> None:
    """Moving test entities (not anchors) leaves every training entity's binned features as they were."""
    train = np.arange(N) % 3 != 0
    feat = FPRFeaturizer.fit(IDS, COUNTS, M, tables=TABLES, quantile_bins=5, fit_rows=train)
    anchors = feat.anchor_rows(IDS)
    moved = TABLES.copy()
    test_only = ~train
    test_only[anchors] = False
    moved[:, test_only] = moved[:, test_only] * 0.5 + 0.3
    again = FPRFeaturizer.fit(IDS, COUNTS, M, tables=moved, quantile_bins=5, fit_rows=train)
    assert again == feat
    np.testing.assert_array_equal(again.transform(moved, IDS)[train], feat.transform(TABLES, IDS)[train])
    everyone = FPRFeaturizer.fit(IDS, COUNTS, M, tables=moved, quantile_bins=5)
    assert everyone.bin_edges != feat.bin_edges  # fitted on all entities, the test ones move the edges
    with pytest.raises(ValueError, match="fit_rows must be"):
        FPRFeaturizer.fit(IDS, COUNTS, M, tables=TABLES, quantile_bins=5, fit_rows=train[:-1])


def test_binned_features_are_blockwise_exact_and_seed_order_invariant_when_an_edge_meets_a_sample() -> None:
    """n = 901 with 10 bins: (n - 1) q is whole, so a linear-interpolation edge would be a sample's
    own value, and float32 rounding that differs with the block size would move it across."""
    n = 901
    tables = np.random.default_rng(1).normal(size=(3, n, 16)).astype(np.float32)
    ids = [f"i{i}" for i in range(n)]
    feat = FPRFeaturizer.fit(ids, np.ones(n), 20, tables=tables, quantile_bins=10)
    whole = feat.transform(tables, ids)
    for block_rows in (1, 7, 64):
        np.testing.assert_array_equal(feat.transform(tables, ids, block_rows=block_rows), whole)
    np.testing.assert_array_equal(feat.transform(tables[[1, 2, 0]], ids), whole)


def test_kmeanspp_anchors_are_deterministic_distinct_and_spread_out() -> None:
    a = kmeanspp_anchors(TABLES, IDS, COUNTS, M, "cosine")
    assert a == kmeanspp_anchors(TABLES, IDS, COUNTS, M, "cosine") and len(set(a)) == M
    assert a[0] == select_anchors(IDS, COUNTS, 1)[0]
    # Two tight, far-apart clusters: k-means++ picks from both within its first two anchors.
    pts = np.vstack([RNG.normal(0, 0.01, (50, 4)) + 5, RNG.normal(0, 0.01, (50, 4)) - 5]).astype(np.float32)
    ids = [f"e{i}" for i in range(100)]
    two = kmeanspp_anchors(pts[None], ids, np.ones(100), 2, "dot")
    assert {int(t[1:]) < 50 for t in two} == {True, False}
    # ...and to scaling a whole table (cosine), but not to a non-orthogonal map.
    skewed = TABLES.copy()
    skewed[0] = TABLES[0] @ (np.eye(D) + np.triu(np.ones((D, D)), 1)).astype(np.float32)
    assert not np.allclose(FEAT.transform(skewed, IDS), FEAT.transform(TABLES, IDS), atol=1e-3)


def test_kmeanspp_never_repeats_an_anchor_when_only_duplicates_are_left() -> None:
    rows = np.repeat(RNG.normal(size=(5, 4)), 4, axis=0).astype(np.float32)  # 5 points, 4 copies each
    ids = [f"i{i}" for i in range(20)]
    for kernel in ("cosine", "dot", "rbf"):
        assert len(set(kmeanspp_anchors(rows[None], ids, np.ones(20), 8, kernel))) == 8


def test_rbf_is_exact_far_from_the_origin() -> None:
    """|x|^2 + |a|^2 - 2 x.a cancels in float32 when the table sits far from 0; the kernel does not move.
    The offset differs by coordinate, so only a per-coordinate centre removes it."""
    rng = np.random.default_rng(2)
    table = (1000.0 * np.sign(rng.normal(size=32)) + rng.normal(size=(2000, 32))).astype(np.float32)
    rows = np.arange(16)
    got = kernel_to_anchors(table, rows, "rbf")
    e = table.astype(np.float64)
    sq = ((e[:, None, :] - e[rows][None]) ** 2).sum(-1)
    h = np.median(sq[:: max(1, 2000 // 4096)])
    np.testing.assert_allclose(got, np.exp(-sq / h), atol=1e-5)
    np.testing.assert_allclose(got, kernel_to_anchors(table - table.mean(0), rows, "rbf"), atol=1e-5)


@pytest.mark.parametrize("kernel", ["dot", "cosine"])
def test_kmeanspp_anchors_match_a_direct_float64_implementation(kernel: str) -> None:
    """d^2 = K_ii + K_jj - 2 K_ij on the seed-mean kernel, first anchor the most frequent entity, then
    draws proportional to the distance to the nearest anchor so far (default_rng(0))."""
    rng = np.random.default_rng(5)
    tables = rng.normal(size=(2, 60, 4)) * rng.uniform(0.5, 2, size=(1, 60, 1))  # rows of different norms
    ids, counts = [f"e{i}" for i in range(60)], np.arange(60)

    def gram(e: np.ndarray) -> np.ndarray:
        e = e / np.linalg.norm(e, axis=1, keepdims=True) if kernel == "cosine" else e
        return e @ e.T

    k = np.mean([gram(e) for e in tables], axis=0)
    d2 = np.diag(k)[:, None] + np.diag(k)[None] - 2 * k
    draw, chosen = np.random.default_rng(0), [59]
    while len(chosen) < 8:
        nearest = np.maximum(d2[:, chosen].min(axis=1), 0)
        nearest[chosen] = 0
        chosen.append(int(draw.choice(60, p=nearest / nearest.sum())))
    assert kmeanspp_anchors(tables, ids, counts, 8, kernel) == [ids[i] for i in chosen]


def test_a_value_on_a_bin_edge_goes_to_the_upper_bin_and_edges_must_ascend() -> None:
    np.testing.assert_array_equal(apply_bins(np.array([[0.5], [0.2]]), np.array([[0.5]])), [[1.0], [0.0]])
    d = FPRFeaturizer(("a", "b"), "cosine", False, ((0.1, 0.5), (0.2, 0.4))).to_dict()
    FPRFeaturizer.from_dict(d)
    with pytest.raises(DataError, match="bin_edges"):
        FPRFeaturizer.from_dict(d | {"bin_edges": [[0.5, 0.1], [0.2, 0.4]]})


def test_bin_edges_are_fitted_on_every_stride_th_training_entity(monkeypatch: pytest.MonkeyPatch) -> None:
    from reprflow.components.featurize import fpr

    monkeypatch.setattr(fpr, "FIT_SAMPLE", 10)  # 25 entities: stride ceil(25 / 10) = 3
    tables = RNG.normal(size=(2, 25, 4)).astype(np.float32)
    ids = [f"e{i}" for i in range(25)]
    feat = FPRFeaturizer.fit(ids, np.arange(25)[::-1], 3, tables=tables, quantile_bins=4)
    raw = FPRFeaturizer.fit(ids, np.arange(25)[::-1], 3).transform(tables, ids)  # unbinned seed mean
    expected = quantile_edges(raw[::3], 4)
    np.testing.assert_allclose(np.array(feat.bin_edges), expected, rtol=1e-6)


def test_invariant_to_seed_order_and_deterministic() -> None:
    a = FEAT.transform(TABLES, IDS)
    b = FEAT.transform(TABLES[[2, 0, 1]], IDS)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.array_equal(a, FEAT.transform(TABLES.copy(), list(IDS)))


def test_blockwise_equals_whole_matrix_and_closed_form() -> None:
    rows = FEAT.anchor_rows(IDS)
    whole = kernel_to_anchors(TABLES[0], rows, block_rows=N)
    np.testing.assert_array_equal(kernel_to_anchors(TABLES[0], rows, block_rows=7), whole)
    e = TABLES[0].astype(np.float64)
    direct = (e @ e[rows].T) / np.outer(np.linalg.norm(e, axis=1), np.linalg.norm(e[rows], axis=1))
    np.testing.assert_allclose(whole, direct, atol=1e-5)
    np.testing.assert_allclose(whole[rows, np.arange(M)], 1.0, atol=1e-5)  # an anchor's kernel to itself
    assert np.abs(whole).max() <= 1 + 1e-5


def test_mean_is_mean_of_per_seed_and_leave_one_out() -> None:
    per_seed = FEAT.transform_seeds(TABLES, IDS)
    np.testing.assert_allclose(FEAT.transform(TABLES, IDS), per_seed.mean(0), atol=1e-6)
    loo = leave_one_out(TABLES, lambda t: FEAT.transform(t, IDS))
    for k in range(K):
        np.testing.assert_allclose(loo[k], np.delete(per_seed, k, axis=0).mean(0), atol=1e-6)
    cat = leave_one_out(TABLES, concat)
    assert cat.shape == (K, N, (K - 1) * D) and np.array_equal(cat[0][:, :D], TABLES[1])


def test_alignment_undoes_a_rotation_exactly_and_only_uses_anchors() -> None:
    q = ortho_group.rvs(D, random_state=3).astype(np.float32)
    tables = np.stack([TABLES[0], TABLES[0] @ q, TABLES[0] @ q.T])
    aligned = align_to_reference(tables, FEAT.anchor_rows(IDS))
    np.testing.assert_allclose(aligned, np.stack([TABLES[0]] * 3), atol=1e-4)
    noisy = tables.copy()
    rows = np.setdiff1d(np.arange(N), FEAT.anchor_rows(IDS))
    noisy[1][rows] += 1.0  # non-anchor rows do not affect the rotation
    np.testing.assert_allclose(align_to_reference(noisy, FEAT.anchor_rows(IDS))[1][FEAT.anchor_rows(IDS)],
                               TABLES[0][FEAT.anchor_rows(IDS)], atol=1e-4)


def test_zero_rows_give_zero_features() -> None:
    tables = TABLES.copy()
    zero = next(i for i in range(N) if IDS[i] not in FEAT.anchors)
    tables[:, zero] = 0
    assert np.all(FEAT.transform(tables, IDS)[zero] == 0)


def test_serialised_featurizer_transforms_the_same_and_checks_anchors() -> None:
    again = FPRFeaturizer.from_dict(FEAT.to_dict())
    assert again == FEAT
    # A later retrain with entities in another order: the anchors keep their meaning.
    perm = RNG.permutation(N)
    shuffled_ids = [IDS[i] for i in perm]
    np.testing.assert_allclose(
        again.transform(TABLES[:, perm], shuffled_ids), FEAT.transform(TABLES, IDS)[perm], atol=1e-6
    )
    keep = [i for i, e in enumerate(IDS) if e != FEAT.anchors[0]]
    with pytest.raises(ValueError, match="anchor"):
        FEAT.transform(TABLES[:, keep], [IDS[i] for i in keep])
    with pytest.raises(ValueError, match="unknown kernel"):
        FPRFeaturizer.fit(IDS, COUNTS, M, kernel="laplace")


def test_transform_streams_a_memory_map_in_bounded_memory(tmp_path) -> None:
    import tracemalloc

    k, n, d, m = 3, 100_000, 32, 64
    path = tmp_path / "tables.npy"
    np.save(path, np.random.default_rng(7).normal(size=(k, n, d)).astype(np.float32))
    tables = np.load(path, mmap_mode="r", allow_pickle=False)
    ids = [str(i) for i in range(n)]
    for feat in (FPRFeaturizer(tuple(ids[:: n // m])), FPRFeaturizer(tuple(ids[:: n // m]), "rbf", seed_spread=True)):
        want = feat.transform(np.asarray(tables), ids)
        tracemalloc.start()
        try:
            got = feat.transform(tables, ids, block_rows=4096)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        np.testing.assert_allclose(got, want, atol=1e-5)
        # the output itself plus O(block) working memory; a float64 copy of the input would be 77 MB
        assert peak < got.nbytes + 24 * 2**20, f"{feat.kernel}: peak {peak / 2**20:.1f} MiB"


def test_variant_anchor_counts_scale_the_count_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from reprflow.components.featurize import variants

    used: list[int] = []
    fit = FPRFeaturizer.fit

    def spy(ids, counts, m, *args, **kw):
        used.append(m)
        return fit(ids, counts, m, *args, **kw)

    monkeypatch.setattr(variants.FPRFeaturizer, "fit", spy)
    variants.variant_study(TABLES, IDS, COUNTS, anchors=10 * N, tasks=[])  # more anchors than items: N are used
    by_variant = dict(zip(variants.VARIANTS, used))
    assert by_variant["cosine"] == N and by_variant["cosine, m/4"] == round(N / 4) and by_variant["cosine, 4m"] == N
    used.clear()
    few = N // 8  # 4m fits under the item count
    variants.variant_study(TABLES, IDS, COUNTS, anchors=few, tasks=[])
    by_variant = dict(zip(variants.VARIANTS, used))
    assert (by_variant["cosine"], by_variant["cosine, m/4"], by_variant["cosine, 4m"]) == (few, round(few / 4), 4 * few)
