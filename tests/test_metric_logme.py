"""LogME: the evidence is the Gaussian marginal likelihood, and logme maximises it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, ortho_group

from reprflow.components.evaluate_predictability.metrics.logme import LogMEResult, log_evidence, logme

RNG = np.random.default_rng(0)


def gaussian_log_density(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """log N(y_j; 0, I/beta + F F'/alpha) per column, straight from the definition."""
    n = f.shape[0]
    cov = np.eye(n) / beta + f @ f.T / alpha
    return np.array([multivariate_normal(np.zeros(n), cov).logpdf(y[:, j]) for j in range(y.shape[1])])


def linear_data(n: int, d: int, c: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d))
    return f, f @ rng.normal(size=(d, c)) + noise * rng.normal(size=(n, c))


def rank_deficient(n: int, d: int, r: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, r)) @ rng.normal(size=(r, d))


@pytest.mark.parametrize(
    "f",
    [
        RNG.normal(size=(15, 6)),  # n > D, full rank
        RNG.normal(size=(6, 11)),  # n < D: (D - r) log alpha with D - r = 5
        RNG.normal(size=(7, 7)),
        rank_deficient(12, 8, 3, seed=1),  # r < D < n
        rank_deficient(5, 9, 2, seed=2),  # r < n < D
    ],
    ids=["n>D", "n<D", "n=D", "r<D<n", "r<n<D"],
)
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.2, 3.0), (7.5, 0.4)])
def test_log_evidence_is_the_gaussian_marginal(f: np.ndarray, alpha: float, beta: float) -> None:
    y = RNG.normal(size=(f.shape[0], 3))
    want = gaussian_log_density(f, y, alpha, beta)
    np.testing.assert_allclose(log_evidence(f, y, alpha, beta), want, rtol=1e-10)


def test_log_evidence_takes_per_column_precisions() -> None:
    f, y = linear_data(10, 4, 3, noise=0.5, seed=3)
    alpha, beta = np.array([0.5, 2.0, 9.0]), np.array([3.0, 0.1, 1.0])
    got = log_evidence(f, y, alpha, beta)
    want = [log_evidence(f, y[:, [j]], alpha[j], beta[j])[0] for j in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_zero_feature_columns_leave_evidence_unchanged() -> None:
    # y ~ N(0, I/beta + F F'/alpha) only sees F F', which zero columns do not change. Each zero
    # column adds 1/2 log alpha through D and 1/2 log alpha through log det A; dropping the
    # (D - r) log alpha term, as the reference code does, would shift the evidence by
    # -extra/2 log alpha (about +4.2 here).
    f = RNG.normal(size=(6, 9))
    y = RNG.normal(size=(6, 2))
    padded = np.hstack([f, np.zeros((6, 7))])
    alpha, beta = 0.3, 2.0
    base = log_evidence(f, y, alpha, beta)
    np.testing.assert_allclose(log_evidence(padded, y, alpha, beta), base, rtol=1e-12)
    np.testing.assert_allclose(base, gaussian_log_density(padded, y, alpha, beta), rtol=1e-10)
    assert abs(7 / 2 * np.log(alpha)) > 4  # the term the reference drops is not negligible here

    # The fixed-point updates do not involve D either, so the whole LogME result is unchanged.
    r0, r1 = logme(f, y), logme(padded, y)
    assert r1.score == pytest.approx(r0.score, rel=1e-10)
    np.testing.assert_allclose(r1.weights[:9], r0.weights, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(r1.weights[9:], 0.0)


@pytest.mark.parametrize("n,d", [(60, 6), (12, 30)])
def test_fixed_point_is_an_evidence_maximum(n: int, d: int) -> None:
    f, y = linear_data(n, d, 3, noise=1.0, seed=4)
    res = logme(f, y, max_iter=10_000, tol=1e-13)
    assert isinstance(res, LogMEResult)
    assert np.isfinite(res.alpha).all() and np.isfinite(res.beta).all()
    np.testing.assert_allclose(res.evidence, log_evidence(f, y, res.alpha, res.beta) / n, rtol=1e-12)
    assert res.score == pytest.approx(res.evidence.mean())

    def ev(la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        return log_evidence(f, y, np.exp(la), np.exp(lb))

    la, lb = np.log(res.alpha), np.log(res.beta)
    h = 1e-4
    grad_a = (ev(la + h, lb) - ev(la - h, lb)) / (2 * h)
    grad_b = (ev(la, lb + h) - ev(la, lb - h)) / (2 * h)
    np.testing.assert_allclose(grad_a, 0.0, atol=1e-6 * n)
    np.testing.assert_allclose(grad_b, 0.0, atol=1e-6 * n)
    peak = ev(la, lb)
    for angle in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        assert (ev(la + 0.1 * np.cos(angle), lb + 0.1 * np.sin(angle)) < peak).all()


def test_weights_are_the_posterior_mean() -> None:
    for n, d in [(40, 5), (8, 20)]:
        f, y = linear_data(n, d, 2, noise=0.3, seed=5)
        res = logme(f, y)
        assert res.weights.shape == (d, 2) and res.evidence.shape == res.alpha.shape == res.beta.shape == (2,)
        for j in range(2):
            a, b = res.alpha[j], res.beta[j]
            if n > d:
                m = b * np.linalg.solve(a * np.eye(d) + b * f.T @ f, f.T @ y[:, j])
            else:  # same matrix by push-through; well conditioned as beta runs to its boundary here
                m = f.T @ np.linalg.solve(a / b * np.eye(n) + f @ f.T, y[:, j])
            np.testing.assert_allclose(res.weights[:, j], m, rtol=1e-7, atol=1e-10)


def test_columns_are_independent() -> None:
    f, y = linear_data(50, 8, 4, noise=0.7, seed=6)
    y[:, 3] = RNG.normal(size=50)  # a column with no signal runs alpha to its boundary
    together = logme(f, y)
    for j in range(4):
        alone = logme(f, y[:, [j]])
        assert together.evidence[j] == pytest.approx(alone.evidence[0], rel=1e-9)
        assert together.alpha[j] == pytest.approx(alone.alpha[0], rel=1e-7)
        assert together.beta[j] == pytest.approx(alone.beta[0], rel=1e-7)
        np.testing.assert_allclose(together.weights[:, j], alone.weights[:, 0], rtol=1e-7, atol=1e-12)
    assert together.score == pytest.approx(together.evidence.mean())


def test_labels_become_one_vs_rest_columns_in_sorted_order() -> None:
    f = RNG.normal(size=(30, 5))
    labels = RNG.choice([7, -2, 3], size=30)
    onehot = (labels[:, None] == np.array([-2, 3, 7])[None, :]).astype(float)
    a, b = logme(f, labels), logme(f, onehot)
    np.testing.assert_allclose(a.evidence, b.evidence, rtol=1e-12)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-12)


def test_informative_features_score_far_higher() -> None:
    f, y = linear_data(200, 10, 2, noise=0.01, seed=7)
    random_features = RNG.normal(size=(200, 10))
    assert logme(f, y).score > logme(random_features, y).score + 3.0
    labels = RNG.integers(0, 4, size=200)
    clustered = np.eye(4)[labels] * 3 + 0.1 * RNG.normal(size=(200, 4))
    assert logme(clustered, labels).score > logme(RNG.normal(size=(200, 4)), labels).score + 0.5


@pytest.mark.parametrize("n,d", [(40, 6), (10, 25)])
def test_invariant_to_rotating_features_and_permuting_samples(n: int, d: int) -> None:
    f, y = linear_data(n, d, 2, noise=0.5, seed=8)
    base = logme(f, y)
    q = ortho_group.rvs(d, random_state=9)
    rotated = logme(f @ q, y)
    assert rotated.score == pytest.approx(base.score, rel=1e-8)
    np.testing.assert_allclose(rotated.weights, q.T @ base.weights, rtol=1e-6, atol=1e-10)
    perm = RNG.permutation(n)
    assert logme(f[perm], y[perm]).score == pytest.approx(base.score, rel=1e-8)


def test_more_features_than_samples_with_labels() -> None:
    f = RNG.normal(size=(20, 64)).astype(np.float32)
    res = logme(f, RNG.integers(0, 3, size=20))
    assert res.weights.dtype == np.float64 and res.weights.shape == (64, 3)
    assert np.isfinite(res.evidence).all() and np.isfinite(res.score)


def test_bad_inputs_raise() -> None:
    f = RNG.normal(size=(10, 3))
    y = RNG.normal(size=(10, 2))
    with pytest.raises(ValueError, match="n=10"):
        logme(f, y[:9])
    with pytest.raises(ValueError, match="n=10"):
        log_evidence(f, y[:9], 1.0, 1.0)
    with pytest.raises(ValueError, match="integer class labels"):
        logme(f, y[:, 0])
    with pytest.raises(ValueError):
        log_evidence(f, y[:, 0], 1.0, 1.0)
    with pytest.raises(ValueError):
        logme(f[:, 0], y)
    with pytest.raises(ValueError, match="NaN"):
        logme(np.where(f > 1, np.nan, f), y)
    with pytest.raises(ValueError, match="alpha"):
        log_evidence(f, y, -1.0, 1.0)
    with pytest.raises(ValueError, match="beta"):
        log_evidence(f, y, 1.0, np.ones(3))
    with pytest.raises(ValueError, match="all zero"):
        logme(f, np.hstack([y, np.zeros((10, 1))]))
