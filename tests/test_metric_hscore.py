"""H-score: the covariance definition, Pillai-trace theory, invariances; the Ledoit-Wolf shrinkage variant."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.covariance import ledoit_wolf_shrinkage as sklearn_ledoit_wolf_shrinkage

from reprflow.components.evaluate_predictability.metrics.hscore import (
    hscore,
    ledoit_wolf_shrinkage,
    regularized_hscore,
)

RNG = np.random.default_rng(0)


def class_means_per_sample(f: np.ndarray, labels: np.ndarray) -> np.ndarray:
    g = np.zeros_like(f)
    for c in np.unique(labels):
        g[labels == c] = f[labels == c].mean(axis=0)
    return g


def hscore_by_definition(f: np.ndarray, labels: np.ndarray, rcond: float | None = None) -> float:
    """tr(cov(f)^+ cov(E[f|y])) with np.cov (1/(n-1) in both) and np.linalg.pinv."""
    cov_f = np.cov(f.T).reshape(f.shape[1], f.shape[1])
    cov_g = np.cov(class_means_per_sample(f, labels).T).reshape(cov_f.shape)
    pinv = np.linalg.pinv(cov_f) if rcond is None else np.linalg.pinv(cov_f, rtol=rcond)
    return float(np.trace(pinv @ cov_g))


def ledoit_wolf_by_definition(f: np.ndarray) -> float:
    """Ledoit & Wolf (2004), Lemma 3.2-3.4 estimators, with an explicit loop over samples."""
    n, d = f.shape
    z = f - f.mean(axis=0)
    s = z.T @ z / n
    mu = np.trace(s) / d
    delta2 = np.sum((s - mu * np.eye(d)) ** 2) / d
    b2 = sum(np.sum((np.outer(x, x) - s) ** 2) / d for x in z) / n**2
    return min(b2, delta2) / delta2


def regularized_by_definition(f: np.ndarray, labels: np.ndarray) -> float:
    n, d = f.shape
    alpha = ledoit_wolf_by_definition(f)
    z = f - f.mean(axis=0)
    s = z.T @ z / n
    shrunk = (1 - alpha) * s + alpha * np.trace(s) / d * np.eye(d)
    g = class_means_per_sample(f, labels) - f.mean(axis=0)
    return float((1 - alpha) * np.trace(np.linalg.inv(shrunk) @ (g.T @ g / n)))


def signal_features(n: int, d: int, c: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    means = sep * rng.normal(size=(c, d))
    return means[labels] + rng.normal(size=(n, d)) @ rng.normal(size=(d, d)), labels


@pytest.mark.parametrize("n,d,c", [(40, 5, 3), (200, 12, 6), (9, 4, 2), (60, 1, 4)])
def test_equals_the_covariance_definition(n: int, d: int, c: int) -> None:
    f, labels = signal_features(n, d, c, sep=0.7, seed=n + d)
    labels = np.array([-3, 5, 9, 11, 20, 42])[labels]  # arbitrary, unsorted class ids
    assert hscore(f, labels) == pytest.approx(hscore_by_definition(f, labels), rel=1e-10)


def test_rank_deficient_features_use_the_pseudo_inverse() -> None:
    # F = A B with B (3, 10) of full row rank: the column space is that of A, so H(AB) = H(A).
    a, labels = signal_features(80, 3, 4, sep=0.5, seed=1)
    b = RNG.normal(size=(3, 10))
    base = hscore(a, labels)
    assert hscore(a @ b, labels) == pytest.approx(base, rel=1e-9)
    assert hscore(a @ b, labels) == pytest.approx(hscore_by_definition(a @ b, labels, rcond=1e-10), rel=1e-9)
    # duplicated and constant columns add no directions
    padded = np.hstack([a, a[:, :1], np.full((80, 2), 3.0)])
    assert hscore(padded, labels) == pytest.approx(base, rel=1e-9)
    # without a tolerance the rounding-level directions would be inverted too and swamp the score
    assert abs(hscore(a @ b, labels, rtol=0.0) - base) > 1e-3
    # a float32 copy carries float32 rounding in the null directions: the default tolerance follows
    # the input's eps (as matrix_rank does), so those are not inverted either
    assert hscore((a @ b).astype(np.float32), labels) == pytest.approx(base, rel=1e-5)


def test_invariant_to_invertible_maps_translation_permutation_and_relabelling() -> None:
    f, labels = signal_features(150, 6, 4, sep=0.6, seed=2)
    base = hscore(f, labels)
    a = RNG.normal(size=(6, 6))
    assert abs(np.linalg.det(a)) > 1e-3
    assert hscore(f @ a + RNG.normal(size=6) * 10, labels) == pytest.approx(base, rel=1e-9)
    # column scales spanning 1e-4 .. 1e4: the QR route never squares the condition number
    assert hscore(f * np.logspace(-4, 4, 6), labels) == pytest.approx(base, rel=1e-9)
    perm = RNG.permutation(150)
    assert hscore(f[perm], labels[perm]) == pytest.approx(base, rel=1e-12)
    renamed = np.array([7, -1, 30, 2])[labels]
    assert hscore(f, renamed) == pytest.approx(base, rel=1e-12)


@pytest.mark.parametrize("c", [2, 3, 5])
def test_features_constant_within_classes_reach_the_maximum(c: int) -> None:
    # Zero within-class scatter: cov(f) = cov(E[f|y]), so H = tr(B^+ B) = rank B = C - 1
    # (one-hot columns sum to 1, so their centred rank is C - 1).
    labels = np.arange(120) % c
    onehot = np.eye(c)[labels]
    assert hscore(onehot, labels) == pytest.approx(c - 1, abs=1e-10)
    # tiny noise: H = D - tr(cov^-1 cov_within), and the noise-only direction costs ~1 = D - (C - 1)
    noisy = onehot + 1e-6 * RNG.normal(size=onehot.shape)
    assert hscore(noisy, labels) == pytest.approx(c - 1, abs=1e-6)
    # class means in general position in D = 10 dimensions: rank B = C - 1 as well
    means = RNG.normal(size=(c, 10))
    assert hscore(means[labels], labels) == pytest.approx(c - 1, abs=1e-10)


def test_bounded_by_rank_and_number_of_classes() -> None:
    for seed, (n, d, c) in enumerate([(100, 2, 6), (100, 8, 3), (50, 5, 5)]):
        f, labels = signal_features(n, d, c, sep=2.0, seed=seed)
        h = hscore(f, labels)
        assert 0.0 <= h <= min(d, c - 1) + 1e-12
    # with rank >= n - 1 every labelling is perfectly separable: H = C - 1
    labels = RNG.integers(0, 4, size=12)
    assert hscore(RNG.normal(size=(12, 30)), labels) == pytest.approx(len(np.unique(labels)) - 1, abs=1e-9)


def test_random_features_match_the_pillai_trace_mean() -> None:
    # Features independent of the labels: H is Pillai's trace, E[H] = D (C - 1) / (n - 1).
    n, d, c, draws = 100, 4, 3, 300
    labels = np.arange(n) % c
    values = np.array([hscore(RNG.normal(size=(n, d)), labels) for _ in range(draws)])
    expected = d * (c - 1) / (n - 1)  # 0.081; the mean's standard error is about 0.0023
    assert values.mean() == pytest.approx(expected, abs=0.012)
    assert hscore(RNG.normal(size=(20_000, 8)), RNG.integers(0, 4, size=20_000)) < 0.005


@pytest.mark.parametrize("n,d", [(40, 5), (300, 10), (15, 30), (3, 4)])
def test_ledoit_wolf_intensity_matches_the_definition_and_sklearn(n: int, d: int) -> None:
    f = RNG.normal(size=(n, d)) @ RNG.normal(size=(d, d)) + 5.0
    want = ledoit_wolf_by_definition(f)
    assert ledoit_wolf_shrinkage(f) == pytest.approx(want, rel=1e-9)
    assert ledoit_wolf_shrinkage(f) == pytest.approx(sklearn_ledoit_wolf_shrinkage(f), rel=1e-9)
    assert 0.0 <= want <= 1.0


def test_ledoit_wolf_intensity_extremes() -> None:
    # isotropic features: E[b^2] = (D + 1) / n ~ E[delta^2], the dispersion of S around mu I is
    # mostly sampling noise, so the intensity is near 1 (often clipped at exactly 1)
    values = [ledoit_wolf_shrinkage(RNG.normal(size=(500, 10))) for _ in range(10)]
    assert min(values) > 0.6 and max(values) == 1.0
    # S = mu I exactly (delta = 0; rounding would otherwise decide between 0 and 1): the shrunk
    # covariance is S for any alpha, and alpha = 0 as in sklearn. D = 1 is always this case.
    square = np.vstack([np.eye(3), -np.eye(3)])
    assert ledoit_wolf_shrinkage(square) == 0.0 == sklearn_ledoit_wolf_shrinkage(square)
    one_column = RNG.normal(size=(50, 1))
    assert ledoit_wolf_shrinkage(one_column) == 0.0 == sklearn_ledoit_wolf_shrinkage(one_column)
    # ... while a nearly isotropic S (delta^2 ~ 1e-12 mu^2 << b^2) is shrunk all the way
    assert ledoit_wolf_shrinkage(square * np.array([1.0, 1.0, 1.0 + 1e-6])) == 1.0
    # one sample: S = 0, nothing to shrink
    assert ledoit_wolf_shrinkage(RNG.normal(size=(1, 4))) == 0.0
    # strongly anisotropic, many samples: intensity is O(1/n)
    f = RNG.normal(size=(5000, 4)) * np.array([1.0, 2.0, 4.0, 8.0])
    assert 0.0 < ledoit_wolf_shrinkage(f) < 0.01


@pytest.mark.parametrize("n,d,c", [(60, 5, 3), (25, 40, 4), (200, 8, 5)])
def test_regularized_equals_the_shrunk_covariance_definition(n: int, d: int, c: int) -> None:
    f, labels = signal_features(n, d, c, sep=0.8, seed=3 + d)
    assert regularized_hscore(f, labels) == pytest.approx(regularized_by_definition(f, labels), rel=1e-9)


def test_regularized_is_below_hscore_and_approaches_it_for_large_n() -> None:
    # H_alpha = tr((S + alpha mu / (1 - alpha) I)^-1 cov(E[f|y])) <= H
    for seed in range(4):
        f, labels = signal_features(80, 6, 3, sep=0.5, seed=10 + seed)
        assert regularized_hscore(f, labels) <= hscore(f, labels) + 1e-12
    # n >> D with a well-conditioned anisotropic covariance: delta^2 = O(1), b^2 = O(1/n), so
    # alpha = O(1/n) and the ridge alpha mu / (1 - alpha) is negligible against every eigenvalue
    rng = np.random.default_rng(20)
    labels = rng.integers(0, 4, size=20_000)
    f = 0.5 * rng.normal(size=(4, 5))[labels] + rng.normal(size=(20_000, 5)) * np.array([1.0, 1.5, 2, 3, 4])
    assert ledoit_wolf_shrinkage(f) < 1e-3
    assert regularized_hscore(f, labels) == pytest.approx(hscore(f, labels), rel=0.01)
    # and the gap closes as n grows
    small = slice(0, 500)
    gap_small = 1 - regularized_hscore(f[small], labels[small]) / hscore(f[small], labels[small])
    gap_large = 1 - regularized_hscore(f, labels) / hscore(f, labels)
    assert 0 < gap_large < gap_small


def test_regularized_invariances_and_no_signal() -> None:
    f, labels = signal_features(120, 6, 3, sep=0.6, seed=30)
    base = regularized_hscore(f, labels)
    q = ortho_group.rvs(6, random_state=1)
    assert regularized_hscore(3.0 * f @ q - 2.0, labels) == pytest.approx(base, rel=1e-9)
    perm = RNG.permutation(120)
    assert regularized_hscore(f[perm], labels[perm]) == pytest.approx(base, rel=1e-12)
    # unlike H, not invariant to a general invertible map (the shrinkage target mu I is not)
    assert regularized_hscore(f * np.array([100, 1, 1, 1, 1, 1]), labels) != pytest.approx(base, rel=1e-3)
    # nothing to shrink (S = mu I, or D = 1): alpha = 0 and H_alpha = H
    square, labels6 = np.vstack([np.eye(3), -np.eye(3)]), np.array([0, 0, 1, 1, 2, 2])
    assert regularized_hscore(square, labels6) == pytest.approx(hscore(square, labels6), rel=1e-12)
    assert regularized_hscore(f[:, :1], labels) == pytest.approx(hscore(f[:, :1], labels), rel=1e-12)
    # alpha = 1 (all of S is attributed to sampling noise): H_alpha = 0 whatever the labels
    near = square * np.array([1.0, 1.0, 1.0 + 1e-6])
    assert ledoit_wolf_shrinkage(near) == 1.0 and regularized_hscore(near, labels6) == 0.0


def test_single_class_and_constant_features_score_zero() -> None:
    f = RNG.normal(size=(30, 4))
    assert hscore(f, np.zeros(30, dtype=int)) == pytest.approx(0.0, abs=1e-12)
    assert hscore(np.ones((30, 4)), np.arange(30) % 3) == 0.0
    assert regularized_hscore(np.ones((30, 4)), np.arange(30) % 3) == 0.0


def test_bad_inputs_raise() -> None:
    f = RNG.normal(size=(10, 3))
    labels = np.arange(10) % 2
    with pytest.raises(ValueError, match="n=10"):
        hscore(f, labels[:9])
    with pytest.raises(ValueError, match="integer class labels"):
        hscore(f, RNG.normal(size=10))
    with pytest.raises(ValueError, match="1-D"):
        regularized_hscore(f, np.eye(2)[labels])
    with pytest.raises(ValueError):
        hscore(f[:, 0], labels)
    with pytest.raises(ValueError, match="NaN"):
        hscore(np.where(f > 1, np.inf, f), labels)
    with pytest.raises(ValueError, match="rtol"):
        hscore(f, labels, rtol=-1.0)
    with pytest.raises(ValueError):
        ledoit_wolf_shrinkage(np.zeros((0, 3)))
