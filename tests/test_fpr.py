"""FPR: the invariances DESIGN.md requires, and the anchor rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reprflow.components.featurize.fpr import FPRFeaturizer, kernel_to_anchors, leave_one_out_means, select_anchors

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


def test_invariant_to_orthogonal_transform_of_any_seed() -> None:
    rotated = TABLES.copy()
    rotated[1] = TABLES[1] @ ortho_group.rvs(D, random_state=1).astype(np.float32)
    np.testing.assert_allclose(FEAT.transform_seeds(rotated, IDS), FEAT.transform_seeds(TABLES, IDS), atol=1e-5)
    np.testing.assert_allclose(FEAT.transform(rotated, IDS), FEAT.transform(TABLES, IDS), atol=1e-5)
    # ...and to scaling a whole table (cosine), but not to a non-orthogonal map.
    skewed = TABLES.copy()
    skewed[0] = TABLES[0] @ (np.eye(D) + np.triu(np.ones((D, D)), 1)).astype(np.float32)
    assert not np.allclose(FEAT.transform(skewed, IDS), FEAT.transform(TABLES, IDS), atol=1e-3)


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


def test_mean_is_mean_of_per_seed_and_loo_means() -> None:
    per_seed = FEAT.transform_seeds(TABLES, IDS)
    np.testing.assert_allclose(FEAT.transform(TABLES, IDS), per_seed.mean(0), atol=1e-6)
    loo = leave_one_out_means(per_seed)
    for k in range(K):
        np.testing.assert_allclose(loo[k], np.delete(per_seed, k, axis=0).mean(0), atol=1e-6)


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
