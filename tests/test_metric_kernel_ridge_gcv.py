"""GCV of linear-kernel ridge: the explicit hat matrix, leave-one-out refits, noise recovery, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reprflow.components.evaluate_predictability.metrics.kernel_ridge_gcv import (
    GCVResult,
    default_lambdas,
    gcv_curve,
    kernel_ridge_gcv,
)

RNG = np.random.default_rng(0)


def hat_matrix(f: np.ndarray, lam: float) -> np.ndarray:
    """n x n hat matrix of ridge with an unpenalised intercept: 11'/n + Fc (Fc'Fc + lam I)^-1 Fc'."""
    n, d = f.shape
    fc = f - f.mean(axis=0)
    return np.full((n, n), 1.0 / n) + fc @ np.linalg.solve(fc.T @ fc + lam * np.eye(d), fc.T)


def gcv_by_definition(f: np.ndarray, y: np.ndarray, lam: float) -> float:
    n = f.shape[0]
    h = hat_matrix(f, lam)
    residual = y - h @ y
    per_column = np.mean(residual**2, axis=0) / (1 - np.trace(h) / n) ** 2
    return float(per_column.mean())


def loocv_by_refitting(f: np.ndarray, y: np.ndarray, lam: float) -> float:
    """Mean squared leave-one-out error, refitting intercept and weights without each sample."""
    n, d = f.shape
    errors = np.empty_like(y)
    for i in range(n):
        keep = np.arange(n) != i
        f_mean, y_mean = f[keep].mean(axis=0), y[keep].mean(axis=0)
        fc, yc = f[keep] - f_mean, y[keep] - y_mean
        w = np.linalg.solve(fc.T @ fc + lam * np.eye(d), fc.T @ yc)
        errors[i] = y[i] - (y_mean + (f[i] - f_mean) @ w)
    return float(np.mean(errors**2))


def linear_data(n: int, d: int, c: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0
    return f, 2.0 + f @ rng.normal(size=(d, c)) + noise * rng.normal(size=(n, c))


@pytest.mark.parametrize(
    "n,d,c",
    [(30, 5, 3), (8, 20, 3), (12, 11, 2), (12, 8, 7)],
    ids=["n>D", "n<D", "D=n-1", "D<n<D+C"],
)
def test_equals_the_explicit_hat_matrix(n: int, d: int, c: int) -> None:
    f, y = linear_data(n, d, c, noise=0.5, seed=n + c)
    lambdas = np.array([1e-3, 0.1, 1.0, 10.0, 1e3])
    want = [gcv_by_definition(f, y, lam) for lam in lambdas]
    np.testing.assert_allclose(gcv_curve(f, y, lambdas), want, rtol=1e-9)


def test_rank_deficient_features_and_labels() -> None:
    f = RNG.normal(size=(25, 3)) @ RNG.normal(size=(3, 9))  # rank 3 < D < n
    labels = RNG.integers(0, 4, size=25)
    onehot = (labels[:, None] == np.unique(labels)[None, :]).astype(float)
    lambdas = np.array([0.01, 1.0, 50.0])
    want = [gcv_by_definition(f, onehot, lam) for lam in lambdas]
    np.testing.assert_allclose(gcv_curve(f, labels, lambdas), want, rtol=1e-9)
    np.testing.assert_allclose(gcv_curve(f, onehot, lambdas), want, rtol=1e-12)


def test_leave_one_out_shortcut_and_gcv_approximation() -> None:
    # Ridge with an unpenalised intercept is a penalised least-squares fit, so exact LOOCV is
    # mean(((I - H) y)_i / (1 - H_ii))^2 with the full hat matrix; GCV replaces each H_ii by tr(H)/n.
    f, y = linear_data(40, 4, 1, noise=1.0, seed=1)
    h = hat_matrix(f, 2.0)
    shortcut = np.mean(((y - h @ y)[:, 0] / (1 - np.diag(h))) ** 2)
    assert loocv_by_refitting(f, y, 2.0) == pytest.approx(shortcut, rel=1e-10)

    f, y = linear_data(400, 6, 1, noise=1.0, seed=2)
    for lam in (0.1, 10.0, 300.0):
        loo = loocv_by_refitting(f, y, lam)
        assert gcv_curve(f, y, np.array([lam]))[0] == pytest.approx(loo, rel=0.02)


def test_best_gcv_recovers_the_noise_variance() -> None:
    n, d, sigma = 3000, 20, 0.5
    rng = np.random.default_rng(3)
    f = rng.normal(size=(n, d))
    w = rng.normal(size=d) / np.sqrt(d)
    y = (f @ w + sigma * rng.normal(size=n))[:, None]
    res = kernel_ridge_gcv(f, y)
    assert isinstance(res, GCVResult)
    # GCV estimates the prediction error sigma^2 (1 + O(D/n)); the sample noise varies by ~3%
    assert res.gcv == pytest.approx(sigma**2, rel=0.05)
    assert res.score == pytest.approx(1 - sigma**2 / np.var(y), abs=0.01)
    # the minimum is interior: lambda near sigma^2 / (|w|^2/D) = D sigma^2 / |w|^2, not a grid end
    best = int(np.argmin(res.curve))
    assert 0 < best < res.lambdas.size - 1
    assert res.gcv == res.curve[best] and res.best_lambda == res.lambdas[best]
    assert 0.05 * d * sigma**2 < res.best_lambda < 20 * d * sigma**2 / (w @ w)


def test_large_lambda_is_the_intercept_only_model() -> None:
    f, y = linear_data(50, 4, 2, noise=1.0, seed=4)
    var = np.var(y, axis=0)
    limit = np.mean(var / (1 - 1 / 50) ** 2)
    assert gcv_curve(f, y, np.array([1e14]))[0] == pytest.approx(limit, rel=1e-8)


def test_unrelated_features_score_about_zero() -> None:
    n = 2000
    res = kernel_ridge_gcv(RNG.normal(size=(n, 10)), RNG.integers(0, 3, size=n))
    assert -0.01 < res.score < 0.0
    f, y = linear_data(n, 10, 1, noise=0.3, seed=5)
    assert kernel_ridge_gcv(f, y).score > 0.9


def test_columns_average_and_labels_are_one_hot() -> None:
    f, y = linear_data(60, 5, 3, noise=0.8, seed=6)
    lambdas = default_lambdas(f)
    together = gcv_curve(f, y, lambdas)
    alone = np.mean([gcv_curve(f, y[:, [j]], lambdas) for j in range(3)], axis=0)
    np.testing.assert_allclose(together, alone, rtol=1e-12)
    res = kernel_ridge_gcv(f, y)
    np.testing.assert_allclose(res.lambdas, lambdas, rtol=1e-12)
    np.testing.assert_allclose(res.curve, together, rtol=1e-12)
    # score is the mean of per-column R^2 at the shared lambda
    per_col = [1 - gcv_curve(f, y[:, [j]], [res.best_lambda])[0] / np.var(y[:, j]) for j in range(3)]
    assert res.score == pytest.approx(np.mean(per_col), rel=1e-12)

    labels = RNG.choice([5, -1, 2], size=60)
    onehot = (labels[:, None] == np.array([-1, 2, 5])[None, :]).astype(float)
    a, b = kernel_ridge_gcv(f, labels), kernel_ridge_gcv(f, onehot)
    assert a.score == pytest.approx(b.score, rel=1e-12) and a.best_lambda == b.best_lambda


def test_invariant_to_rotation_translation_permutation_and_scale() -> None:
    f, y = linear_data(80, 6, 2, noise=0.7, seed=7)
    base = kernel_ridge_gcv(f, y)
    q = ortho_group.rvs(6, random_state=8)
    rotated = kernel_ridge_gcv(f @ q + 10.0, y - 4.0)
    np.testing.assert_allclose(rotated.curve, base.curve, rtol=1e-9)
    assert rotated.best_lambda == pytest.approx(base.best_lambda, rel=1e-9)
    assert rotated.score == pytest.approx(base.score, rel=1e-9)
    perm = RNG.permutation(80)
    np.testing.assert_allclose(kernel_ridge_gcv(f[perm], y[perm]).curve, base.curve, rtol=1e-10)
    # F -> c F with lambda -> c^2 lambda is the same fit; the default grid follows s_max^2
    scaled = kernel_ridge_gcv(5.0 * f, y)
    np.testing.assert_allclose(scaled.curve, base.curve, rtol=1e-9)
    assert scaled.best_lambda == pytest.approx(25.0 * base.best_lambda, rel=1e-9)
    # anisotropic scaling changes the ridge penalty, so it is not an invariance
    assert not np.allclose(kernel_ridge_gcv(f * np.array([30, 1, 1, 1, 1, 1]), y).curve, base.curve, rtol=1e-3)


def test_constant_features_give_the_intercept_only_fit() -> None:
    y = RNG.normal(size=(20, 1))
    res = kernel_ridge_gcv(np.full((20, 3), 2.0), y)
    np.testing.assert_allclose(res.curve, np.var(y) / (1 - 1 / 20) ** 2, rtol=1e-12)


def test_bad_inputs_raise() -> None:
    f, y = linear_data(10, 3, 2, noise=1.0, seed=9)
    with pytest.raises(ValueError, match="n=10"):
        gcv_curve(f, y[:9], np.array([1.0]))
    with pytest.raises(ValueError, match="positive"):
        gcv_curve(f, y, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="positive"):
        kernel_ridge_gcv(f, y, np.array([np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        gcv_curve(f, y, np.ones((2, 2)))
    with pytest.raises(ValueError, match="1-D"):
        gcv_curve(f, y, np.array([]))
    with pytest.raises(ValueError, match="integer class labels"):
        kernel_ridge_gcv(f, y[:, 0])
    with pytest.raises(ValueError, match="NaN"):
        kernel_ridge_gcv(np.where(f > 1, np.nan, f), y)
    with pytest.raises(ValueError, match="constant"):
        kernel_ridge_gcv(f, np.hstack([y, np.full((10, 1), 0.1)]))
    with pytest.raises(ValueError, match="at least 2"):
        kernel_ridge_gcv(f[:1], y[:1])
