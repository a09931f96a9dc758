"""Risk predictor: kappa, closed forms for Sigma = I, and Monte Carlo of ridge and PCR on Gaussian data."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.optimize import minimize_scalar

from reprflow.components.evaluate_predictability.metrics.risk_predictor import (
    RiskCurve,
    pcr_risk,
    ridge_risk,
    risk_from_features,
    solve_kappa,
)

P = 100
EIG = np.arange(1, P + 1, dtype=np.float64) ** -1.0  # power-law spectrum, tr = 5.19
SIGNAL = np.random.default_rng(1).normal(size=P) * np.arange(1, P + 1) ** -0.25  # signal power ~ 1
NOISE = 0.2
REPS = 150
N_MAX = 400


def df1(eig: np.ndarray, kappa: float) -> float:
    pos = eig[eig > 0]
    return float((pos / (pos + kappa)).sum())


# ---------------------------------------------------------------- kappa


@pytest.mark.parametrize("lam", [1e-8, 1e-3, 0.1, 10.0])
@pytest.mark.parametrize("n", [5, 60, 99, 100, 101, 300, 10_000])
def test_kappa_solves_its_fixed_point(lam: float, n: int) -> None:
    kappa = solve_kappa(EIG, n, lam)
    assert kappa > lam
    assert kappa == pytest.approx(lam + kappa * df1(EIG, kappa) / n, rel=1e-12)
    # the root used is the one with 1 - df2/n > 0 (the physical branch)
    assert (EIG**2 / (EIG + kappa) ** 2).sum() < n


@pytest.mark.parametrize("n", [1, 10, 50, 99])
def test_ridgeless_kappa_matches_n_degrees_of_freedom(n: int) -> None:
    kappa = solve_kappa(EIG, n, 0.0)
    assert kappa > 0
    assert df1(EIG, kappa) == pytest.approx(n, rel=1e-12)
    # the small-lambda limit is continuous
    assert solve_kappa(EIG, n, 1e-12) == pytest.approx(kappa, rel=1e-6)


def test_ridgeless_kappa_is_zero_once_n_reaches_the_rank() -> None:
    eig = np.concatenate([EIG[:30], np.zeros(20)])  # rank 30 in p = 50
    assert solve_kappa(eig, 29, 0.0) > 0
    assert solve_kappa(eig, 30, 0.0) == 0.0
    assert solve_kappa(eig, 45, 0.0) == 0.0


@pytest.mark.parametrize("lam", [1e-30, 1e-40, 1e-60])
def test_kappa_at_n_equal_to_the_rank_for_a_tiny_lambda_is_the_small_kappa_root(lam: float) -> None:
    """At n = rank, kappa (1 - df1/n) ~ kappa^2 sum(1/lambda_i) / n, so kappa -> sqrt(lam n / sum 1/lambda_i)."""
    eig = EIG[:30]
    assert solve_kappa(eig, 30, lam) == pytest.approx(np.sqrt(lam * 30 / (1 / eig).sum()), rel=1e-9)
    total = ridge_risk(eig, np.full(30, 0.1), [20, 30, 40], lam, 1.0).total  # a grid through n = rank
    assert np.isfinite(total[[0, 2]]).all() and total[1] > max(total[0], total[2])  # the interpolation peak


def test_kappa_tends_to_lambda_as_n_grows() -> None:
    lam = 0.01
    kappas = np.array([solve_kappa(EIG, n, lam) for n in [10, 100, 1_000, 10**5, 10**8]])
    assert (np.diff(kappas) < 0).all()
    assert kappas[-1] / lam - 1 < 1e-5
    # first order: kappa - lam ~ lam df1(lam) / n
    assert (kappas[-2] - lam) == pytest.approx(lam * df1(EIG, lam) / 1e5, rel=1e-3)


@pytest.mark.parametrize("n", [20, 100, 400])
def test_kappa_increases_with_lambda(n: int) -> None:
    kappas = np.array([solve_kappa(EIG, n, lam) for lam in [0.0, 1e-6, 1e-4, 1e-2, 1.0, 100.0]])
    assert (np.diff(kappas) > 0).all()


# ---------------------------------------------------------------- Sigma = I closed forms


@pytest.mark.parametrize("gamma", [0.25, 0.8, 1.25, 3.0])
@pytest.mark.parametrize("lam", [1e-3, 0.5, 4.0])
def test_isotropic_kappa_is_the_quadratic_root(gamma: float, lam: float) -> None:
    # Sigma = I: kappa = lam + kappa gamma / (1 + kappa), so kappa^2 + (1 - gamma - lam) kappa - lam = 0
    p = 200
    n = int(round(p / gamma))
    g = p / n
    want = 0.5 * ((lam + g - 1) + np.sqrt((lam + g - 1) ** 2 + 4 * lam))
    assert solve_kappa(np.ones(p), n, lam) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("lam", [0.0, 1e-10])
@pytest.mark.parametrize("n", [400, 250, 120, 80, 50, 20])  # gamma = p / n from 0.5 to 10
def test_isotropic_ridgeless_risk_is_marchenko_pastur(lam: float, n: int) -> None:
    # Hastie, Montanari, Rosset, Tibshirani (2022), Sigma = I, r^2 = ||beta*||^2, gamma = p/n:
    #   gamma < 1:  bias 0,                  variance sigma^2 gamma / (1 - gamma)
    #   gamma > 1:  bias r^2 (1 - 1/gamma),  variance sigma^2 / (gamma - 1)
    p, sigma2 = 200, 0.3
    beta = np.random.default_rng(2).normal(size=p)
    r2 = float(beta @ beta)
    gamma = p / n
    curve = ridge_risk(np.ones(p), beta, n, lam, sigma2)
    if gamma < 1:
        bias, var = 0.0, sigma2 * gamma / (1 - gamma)
    else:
        bias, var = r2 * (1 - 1 / gamma), sigma2 / (gamma - 1)
    assert curve.bias[0] == pytest.approx(bias, rel=1e-6, abs=1e-8)
    assert curve.variance_noise[0] == pytest.approx(var, rel=1e-6)
    assert curve.total[0] == pytest.approx(bias + var + sigma2, rel=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_isotropic_optimal_ridge_is_sigma2_gamma_over_r2(gamma: float) -> None:
    # Dobriban and Wager (2018): for Sigma = I the risk is minimised at lam* = gamma sigma^2 / r^2
    p, sigma2 = 200, 0.5
    beta = np.full(p, 0.1)  # r^2 = 2
    n = int(p / gamma)
    res = minimize_scalar(
        lambda log_lam: ridge_risk(np.ones(p), beta, n, np.exp(log_lam), sigma2).total[0],
        bounds=(-8.0, 4.0),
        method="bounded",
        options={"xatol": 1e-8},
    )
    assert np.exp(res.x) == pytest.approx(gamma * sigma2 / 2.0, rel=1e-3)


def test_isotropic_pcr_is_the_exact_ols_formula() -> None:
    # Sigma = I, k components: sigma_k^2 = sigma^2 + sigma_u^2 + ||b_rest||^2, variance sigma_k^2 k / (n - k - 1)
    p, k, sigma2, su2 = 50, 10, 0.3, 0.1
    beta = np.random.default_rng(3).normal(size=p)
    discarded = float(beta[k:] @ beta[k:])
    n = np.array([12, 20, 100])
    curve = pcr_risk(np.ones(p), beta, n, k, sigma2, su2)
    np.testing.assert_allclose(curve.bias, discarded)
    np.testing.assert_allclose(curve.variance_noise, sigma2 * k / (n - k - 1))
    np.testing.assert_allclose(curve.variance_unexplained, (su2 + discarded) * k / (n - k - 1))
    np.testing.assert_allclose(curve.total, (sigma2 + su2 + discarded) * (1 + k / (n - k - 1)))


# ---------------------------------------------------------------- Monte Carlo


@lru_cache(maxsize=1)
def simulation() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """REPS independent Gaussian training sets of N_MAX rows; smaller n use the first n rows.

    Returns standard normals Z (REPS, N_MAX, P), X = Z sqrt(EIG) (Sigma diagonal: the eigenbasis
    is the coordinate basis), label noise e and a nonlinear misspecification u, uncorrelated with
    X (E[(z^2 - 1) z_j] = 0 for Gaussian z), of variance 0.15.
    """
    rng = np.random.default_rng(0)
    z = rng.normal(size=(REPS, N_MAX, P))
    e = np.sqrt(NOISE) * rng.normal(size=(REPS, N_MAX))
    u = np.sqrt(0.15 / (2 * 25)) * (z[..., :25] ** 2 - 1).sum(axis=-1)
    return z, z * np.sqrt(EIG), e, u


def fit_ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """(REPS, p) ridge solutions of (1/n)||y - X b||^2 + lam ||b||^2, one per repetition."""
    n, p = x.shape[1], x.shape[2]
    gram = np.einsum("rnp,rnq->rpq", x, x) / n + lam * np.eye(p)
    rhs = np.einsum("rnp,rn->rp", x, y)[..., None] / n
    return sla.solve(gram, rhs, assume_a="pos")[..., 0]


def fit_least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(REPS, k) OLS for n > k, minimum-norm interpolator for n < k."""
    n, k = x.shape[1], x.shape[2]
    if n > k:
        gram = np.einsum("rnp,rnq->rpq", x, x)
        return sla.solve(gram, np.einsum("rnp,rn->rp", x, y)[..., None], assume_a="pos")[..., 0]
    kernel = np.einsum("rnp,rmp->rnm", x, x)
    alpha = sla.solve(kernel, y[..., None], assume_a="pos")[..., 0]
    return np.einsum("rnp,rn->rp", x, alpha)


def mc_risk(beta_hat: np.ndarray, beta: np.ndarray, eig: np.ndarray, irreducible: float) -> tuple[float, float]:
    """Mean exact test risk (b_hat - b)' Sigma (b_hat - b) + irreducible, and its standard error."""
    risk = ((beta_hat - beta) ** 2 * eig).sum(axis=1) + irreducible
    return float(risk.mean()), float(risk.std(ddof=1) / np.sqrt(risk.size))


@pytest.mark.parametrize("lam", [1e-2, 1e-1])
@pytest.mark.parametrize("n", [30, 200, 400])  # away from the peak at n = p = 100
def test_ridge_matches_monte_carlo(lam: float, n: int) -> None:
    _, x, e, _ = simulation()
    y = x[:, :n] @ SIGNAL + e[:, :n]
    mc, se = mc_risk(fit_ridge(x[:, :n], y, lam), SIGNAL, EIG, NOISE)
    predicted = ridge_risk(EIG, SIGNAL, n, lam, NOISE).total[0]
    assert se < 0.012 * mc
    assert predicted == pytest.approx(mc, rel=0.05)  # observed within 0.7%


@pytest.mark.parametrize("lam", [1e-2, 1e-1])
@pytest.mark.parametrize("n", [30, 200, 400])
def test_ridge_on_missing_features_matches_monte_carlo(lam: float, n: int) -> None:
    # the odd coordinates are not in the feature map: their signal is unexplained variance
    _, x, e, _ = simulation()
    seen, hidden = np.arange(0, P, 2), np.arange(1, P, 2)
    unexplained = float((EIG[hidden] * SIGNAL[hidden] ** 2).sum())
    y = x[:, :n] @ SIGNAL + e[:, :n]
    mc, _ = mc_risk(fit_ridge(x[:, :n, seen], y, lam), SIGNAL[seen], EIG[seen], NOISE + unexplained)
    curve = ridge_risk(EIG[seen], SIGNAL[seen], n, lam, NOISE, unexplained)
    assert curve.total[0] == pytest.approx(mc, rel=0.05)  # observed within 0.8%


@pytest.mark.parametrize("lam", [1e-2, 1e-1])
@pytest.mark.parametrize("n", [30, 200, 400])
def test_ridge_with_nonlinear_misspecification_matches_monte_carlo(lam: float, n: int) -> None:
    # u is a function of x, uncorrelated with it but not independent: noise-like only in the
    # Gaussian-equivalence sense
    _, x, e, u = simulation()
    y = x[:, :n] @ SIGNAL + u[:, :n] + e[:, :n]
    mc, _ = mc_risk(fit_ridge(x[:, :n], y, lam), SIGNAL, EIG, NOISE + 0.15)
    curve = ridge_risk(EIG, SIGNAL, n, lam, NOISE, 0.15)
    assert curve.total[0] == pytest.approx(mc, rel=0.05)  # observed within 0.8%


@pytest.mark.parametrize(
    "k,n,rel",
    [
        (20, 60, 0.05),  # exact Gaussian formula (n >= k + 2); observed within 2%
        (20, 200, 0.05),
        (20, 400, 0.05),
        (40, 15, 0.08),  # n < k: ridgeless deterministic equivalent; observed within 2%
    ],
)
def test_pcr_matches_monte_carlo(k: int, n: int, rel: float) -> None:
    _, x, e, _ = simulation()
    y = x[:, :n] @ SIGNAL + e[:, :n]  # the discarded directions are real features of the data
    discarded = float((EIG[k:] * SIGNAL[k:] ** 2).sum())
    mc, _ = mc_risk(fit_least_squares(x[:, :n, :k], y), SIGNAL[:k], EIG[:k], NOISE + discarded)
    curve = pcr_risk(EIG, SIGNAL, n, k, NOISE)
    assert curve.bias[0] >= discarded
    assert curve.total[0] == pytest.approx(mc, rel=rel)


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.1, 10.0])
def test_ridge_parts_add_up_and_bias_falls_with_n(lam: float) -> None:
    n = np.arange(1, 600)
    curve = ridge_risk(EIG, SIGNAL, n, lam, NOISE, 0.05)
    assert isinstance(curve, RiskCurve)
    finite = np.isfinite(curve.total)
    assert finite.sum() == (n.size - 1 if lam == 0 else n.size)  # only n = p diverges, and only ridgeless
    np.testing.assert_allclose(curve.excess, curve.bias + curve.variance_noise + curve.variance_unexplained)
    np.testing.assert_allclose(curve.total[finite], (curve.excess + curve.irreducible)[finite], rtol=1e-14)
    np.testing.assert_allclose(curve.irreducible, NOISE + 0.05)
    assert (np.diff(curve.bias) <= 1e-15).all()
    assert np.array_equal(curve.n, n)


def test_variances_scale_linearly_with_their_variances() -> None:
    n = np.array([20, 80, 300])
    base = ridge_risk(EIG, SIGNAL, n, 0.01, NOISE, 0.1)
    doubled = ridge_risk(EIG, SIGNAL, n, 0.01, 2 * NOISE, 0.1)
    np.testing.assert_allclose(doubled.variance_noise, 2 * base.variance_noise, rtol=1e-13)
    np.testing.assert_allclose(doubled.bias, base.bias, rtol=1e-13)
    np.testing.assert_allclose(doubled.variance_unexplained, base.variance_unexplained, rtol=1e-13)
    # noise and unexplained variance are the same thing to a linear predictor
    swapped = ridge_risk(EIG, SIGNAL, n, 0.01, 0.1, NOISE)
    np.testing.assert_allclose(swapped.excess, base.excess, rtol=1e-13)
    np.testing.assert_allclose(swapped.variance_noise, base.variance_unexplained, rtol=1e-13)
    noiseless = ridge_risk(EIG, SIGNAL, n, 0.01, 0.0)
    assert (noiseless.variance_noise == 0).all() and (noiseless.variance_unexplained == 0).all()


def test_pcr_parts_and_interpolation_threshold() -> None:
    k = 20
    n = np.arange(1, 500)
    curve = pcr_risk(EIG, SIGNAL, n, k, NOISE, 0.05)
    discarded = float((EIG[k:] * SIGNAL[k:] ** 2).sum())
    infinite = np.isin(n, [k - 1, k, k + 1])
    assert np.isinf(curve.variance_noise[infinite]).all() and np.isfinite(curve.total[~infinite]).all()
    np.testing.assert_allclose(curve.bias[n >= k], discarded)
    assert (curve.bias[n < k] > discarded).all()
    assert (np.diff(curve.bias) <= 1e-15).all()
    ok = ~infinite
    np.testing.assert_allclose(
        curve.variance_unexplained[ok], curve.variance_noise[ok] * (0.05 + discarded) / NOISE, rtol=1e-12
    )
    np.testing.assert_allclose(curve.total[ok], (curve.excess + curve.irreducible)[ok], rtol=1e-14)
    # past the threshold the risk falls towards that of the top-k projection of beta*
    tail = n >= k + 2
    assert (np.diff(curve.total[tail]) < 0).all()
    assert curve.total[-1] == pytest.approx(NOISE + 0.05 + discarded, rel=0.05)


def test_pcr_with_every_component_is_exact_ols() -> None:
    # k = p: no discarded signal, OLS risk sigma^2 p / (n - p - 1); ridge's deterministic
    # equivalent at lam = 0 gives the asymptotic sigma^2 p / (n - p)
    n = np.array([110, 200, 1000])
    pcr = pcr_risk(EIG, SIGNAL, n, P, NOISE)
    np.testing.assert_allclose(pcr.excess, NOISE * P / (n - P - 1), rtol=1e-13)
    ridge = ridge_risk(EIG, SIGNAL, n, 0.0, NOISE)
    np.testing.assert_allclose(ridge.excess, NOISE * P / (n - P), rtol=1e-10)


def test_unsorted_spectrum_gives_the_same_pcr() -> None:
    perm = np.random.default_rng(4).permutation(P)
    n = np.array([10, 50, 300])
    a = pcr_risk(EIG, SIGNAL, n, 15, NOISE)
    b = pcr_risk(EIG[perm], SIGNAL[perm], n, 15, NOISE)
    np.testing.assert_allclose(b.total, a.total, rtol=1e-12)


# ---------------------------------------------------------------- plug-in from data


def rotated_gaussian(big_n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features with spectrum ev in a random basis Q (plus an offset), and their eigen-coordinates."""
    p = 20
    rng = np.random.default_rng(seed)
    ev = np.linspace(3.0, 0.1, p)
    q = np.linalg.qr(np.random.default_rng(99).normal(size=(p, p)))[0]
    coords = rng.normal(size=(big_n, p)) * np.sqrt(ev)
    return coords @ q.T + 5.0, coords, ev, q


def test_risk_from_features_recovers_the_population_curves() -> None:
    feats, _, ev, q = rotated_gaussian(40_000, seed=5)
    beta = np.random.default_rng(6).normal(size=ev.size) * 0.5
    targets = feats @ beta + np.sqrt(0.5) * np.random.default_rng(7).normal(size=feats.shape[0]) + 1.0
    grid = np.array([10, 40, 100])
    out = risk_from_features(feats, targets, grid, lam=0.05, k=5)
    signal = q.T @ beta
    np.testing.assert_allclose(out["eigenvalues"], ev, rtol=0.05)
    assert out["explained"] == pytest.approx(float((ev * signal**2).sum()), rel=0.03)
    assert out["residual"] == pytest.approx(0.5, rel=0.03)
    assert out["noise"] == out["residual"] and out["unexplained"] == 0.0
    assert out["target_variance"] == pytest.approx(out["explained"] + out["residual"], rel=1e-3)
    np.testing.assert_allclose(out["ridge"].total, ridge_risk(ev, signal, grid, 0.05, 0.5).total, rtol=0.03)
    np.testing.assert_allclose(out["pcr"].total, pcr_risk(ev, signal, grid, 5, 0.5).total, rtol=0.03)
    # signal is beta* in an orthonormal basis (the sample eigenvectors, which mix neighbouring
    # population ones at this eigen-gap, so only basis-free quantities are compared)
    assert np.linalg.norm(out["signal"]) == pytest.approx(np.linalg.norm(beta), rel=0.01)


def test_a_direction_too_small_for_beta_is_not_in_sigma_either() -> None:
    """Column 2 at relative variance ~1e-15: below N eps (dropped when fitting beta*) but above
    p eps. Sigma must drop it too, so the rank is 2 and the ridgeless peak sits at n = 2."""
    rng = np.random.default_rng(3)
    f = rng.standard_normal((20_000, 3))
    f[:, 2] *= 3e-8
    out = risk_from_features(f, f[:, 0] + 0.1 * rng.standard_normal(20_000), np.array([2, 3, 10]), lam=0.0)
    assert out["eigenvalues"][2] == 0.0 and out["signal"][2] == pytest.approx(0.0, abs=1e-12)
    assert np.isinf(out["ridge"].total[0]) and np.isfinite(out["ridge"].total[1:]).all()


def test_risk_from_features_splits_residual_by_the_given_noise() -> None:
    feats, coords, ev, _ = rotated_gaussian(20_000, seed=8)
    rng = np.random.default_rng(9)
    u = np.sqrt(0.5) * (coords[:, 0] ** 2 / ev[0] - 1.0)  # nonlinear, var 1, uncorrelated with x
    targets = feats @ rng.normal(size=ev.size) + u + np.sqrt(0.3) * rng.normal(size=feats.shape[0])
    grid = [30, 200]
    default = risk_from_features(feats, targets, grid, lam=0.01)
    split = risk_from_features(feats, targets, grid, lam=0.01, noise=0.3)
    assert default["residual"] == pytest.approx(1.3, rel=0.05)
    assert split["noise"] == 0.3
    assert split["unexplained"] == pytest.approx(default["residual"] - 0.3, rel=1e-12)
    np.testing.assert_allclose(split["ridge"].total, default["ridge"].total, rtol=1e-12)
    np.testing.assert_allclose(
        split["ridge"].variance_noise + split["ridge"].variance_unexplained,
        default["ridge"].variance_noise,
        rtol=1e-12,
    )
    assert "pcr" not in split
    too_big = risk_from_features(feats, targets, grid, lam=0.01, noise=10.0)
    assert too_big["unexplained"] == 0.0


def test_risk_from_features_takes_sigma_from_the_pool() -> None:
    pool, _, ev, q = rotated_gaussian(60_000, seed=10)
    labelled, _, _, _ = rotated_gaussian(3_000, seed=11)
    beta = np.random.default_rng(12).normal(size=ev.size)
    targets = labelled @ beta + np.random.default_rng(13).normal(size=labelled.shape[0])
    out = risk_from_features(labelled, targets, [50], k=3, pool=pool)
    np.testing.assert_allclose(out["eigenvalues"], ev, rtol=0.04)
    assert out["explained"] == pytest.approx(float(beta @ (q * ev) @ q.T @ beta), rel=0.03)
    assert set(out) >= {"pcr"} and "ridge" not in out


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: solve_kappa(np.array([1.0, -0.1]), 10, 0.1),
        lambda: solve_kappa(np.zeros(3), 10, 0.1),
        lambda: solve_kappa(EIG, 10, -1.0),
        lambda: solve_kappa(EIG, 0, 0.1),
        lambda: solve_kappa(EIG, 2.5, 0.1),
        lambda: solve_kappa(np.array([1.0, np.nan]), 10, 0.1),
        lambda: ridge_risk(EIG, SIGNAL[:-1], 10, 0.1, NOISE),
        lambda: ridge_risk(EIG, SIGNAL, 10, 0.1, -1.0),
        lambda: ridge_risk(EIG, SIGNAL, 10, 0.1, NOISE, unexplained=np.inf),
        lambda: ridge_risk(EIG, SIGNAL, np.array([10, 0]), 0.1, NOISE),
        lambda: pcr_risk(EIG, SIGNAL, 10, 0, NOISE),
        lambda: pcr_risk(EIG, SIGNAL, 10, P + 1, NOISE),
        lambda: pcr_risk(np.array([1.0, 0.0]), np.ones(2), 10, 2, NOISE),
        lambda: risk_from_features(np.ones((10, 3)), np.arange(10.0), [5], lam=0.1),
        lambda: risk_from_features(np.eye(10, 3), np.arange(9.0), [5], lam=0.1),
        lambda: risk_from_features(np.eye(10, 3), np.arange(10.0), [5]),
        lambda: risk_from_features(np.eye(10, 3), np.arange(10.0), [5], lam=0.1, pool=np.eye(10, 4)),
    ],
)
def test_bad_input_raises(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_risk_from_features_splits_the_target_variance_exactly_on_a_small_sample() -> None:
    """Without a stabiliser the explained part is the OLS fit on centred features: explained +
    residual = var(y) (ddof 0) exactly, whatever N; large-N checks cannot tell N from N - 1 or N - p."""
    rng = np.random.default_rng(1)
    f = rng.normal(size=(20, 5))
    y = f @ rng.normal(size=5) + rng.normal(size=20)
    out = risk_from_features(f, y, 50, lam=0.1, stabiliser=0.0)
    assert out["target_variance"] == pytest.approx(np.var(y), rel=1e-12)
    assert out["explained"] + out["residual"] == pytest.approx(out["target_variance"], rel=1e-10)
