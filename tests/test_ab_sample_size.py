"""A/B sample sizes against theory: textbook values, closed forms, symmetry, monotonicity, simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from reprflow.components.ab_prep.sample_size import power_two_proportions, two_means, two_proportions

Z975, Z80, Z90 = norm.ppf(0.975), norm.ppf(0.8), norm.ppf(0.9)


# -- known values ----------------------------------------------------------------------------------


def test_textbook_value_pooled_under_h0() -> None:
    # p 0.10 vs 0.12, alpha 0.05 two-sided, power 0.8, equal split: Fleiss (pooled H0, unpooled H1,
    # no continuity correction) gives 3840.85 per arm, as R's power.prop.test(p1=.10, p2=.12, power=.8).
    n = two_proportions(0.10, 0.12, alpha=0.05, power=0.8, treatment_share=0.5)
    by_hand = (Z975 * math.sqrt(2 * 0.11 * 0.89) + Z80 * math.sqrt(0.10 * 0.90 + 0.12 * 0.88)) ** 2 / 0.02**2
    assert by_hand == pytest.approx(3840.847, abs=1e-3)
    assert n.total_exact / 2 == pytest.approx(by_hand, rel=1e-12)
    assert (n.control, n.treatment, n.total) == (3841, 3841, 7682)


def test_textbook_value_unpooled() -> None:
    # Chow, Shao & Wang (2008, sec. 4.2): (z_a + z_b)^2 (p1 q1 + p2 q2) / delta^2 = 3838.10 -> 3,839.
    n = two_proportions(0.10, 0.12, h0_variance="unpooled")
    assert n.total_exact / 2 == pytest.approx((Z975 + Z80) ** 2 * (0.09 + 0.1056) / 0.0004, rel=1e-12)
    assert n.total_exact / 2 == pytest.approx(3838.102, abs=1e-3)
    assert (n.control, n.treatment) == (3839, 3839)


def test_r_power_prop_test_documented_example() -> None:
    # R ?power.prop.test: power.prop.test(p1 = .50, p2 = .75, power = .90)  # => n = 76.7
    n = two_proportions(0.50, 0.75, alpha=0.05, power=0.90)
    assert n.total_exact / 2 == pytest.approx(76.7, abs=0.05)
    assert n.control == n.treatment == 77


def test_means_known_value() -> None:
    # d = 0.5, alpha 0.05, power 0.8: 2 (z_a + z_b)^2 / d^2 = 62.79 -> 63 per arm (the t-test's 64, minus ~1).
    n = two_means(delta=0.5, sd=1.0)
    assert n.total_exact / 2 == pytest.approx(2 * (Z975 + Z80) ** 2 / 0.25, rel=1e-12)
    assert n.total_exact / 2 == pytest.approx(62.791, abs=1e-3)
    assert (n.control, n.treatment, n.total) == (63, 63, 126)


@pytest.mark.parametrize("r", [0.1, 0.3, 0.5, 0.8])
def test_unequal_split_matches_fleiss_ratio_form(r: float) -> None:
    """Fleiss' k-ratio form, written independently: n_c = [z_a sqrt(pbar qbar (1 + 1/k)) +
    z_b sqrt(p_c q_c + p_t q_t / k)]^2 / delta^2, k = n_t / n_c, pbar = (p_c + k p_t) / (1 + k)."""
    p_c, p_t = 0.05, 0.056
    k = r / (1 - r)
    pbar = (p_c + k * p_t) / (1 + k)
    n_c = (Z975 * math.sqrt(pbar * (1 - pbar) * (1 + 1 / k))
           + Z80 * math.sqrt(p_c * (1 - p_c) + p_t * (1 - p_t) / k)) ** 2 / (p_t - p_c) ** 2
    n = two_proportions(p_c, p_t, treatment_share=r)
    assert (1 - r) * n.total_exact == pytest.approx(n_c, rel=1e-12)
    assert n.control == math.ceil(n_c) and n.treatment == math.ceil(k * n_c)
    assert n.total == n.control + n.treatment


# -- symmetry and monotonicity ------------------------------------------------------------------


@pytest.mark.parametrize("p_c,p_t", [(0.10, 0.12), (0.3, 0.2), (0.01, 0.013)])
def test_equal_split_symmetric_in_the_arms(p_c: float, p_t: float) -> None:
    a, b = two_proportions(p_c, p_t), two_proportions(p_t, p_c)
    assert a == b and a.control == a.treatment


def test_swapping_arms_and_shares_mirrors_the_arms() -> None:
    a, b = two_proportions(0.10, 0.13, treatment_share=0.3), two_proportions(0.13, 0.10, treatment_share=0.7)
    assert a.total_exact == pytest.approx(b.total_exact, rel=1e-12)
    assert (a.control, a.treatment) == (b.treatment, b.control)
    c, d = two_means(0.2, 1.0, treatment_share=0.3), two_means(-0.2, 1.0, treatment_share=0.7)
    assert (c.control, c.treatment) == (d.treatment, d.control)


def test_monotone_in_effect_power_and_alpha() -> None:
    sizes = [two_proportions(0.10, 0.10 + d).total_exact for d in (0.05, 0.03, 0.02, 0.01, 0.005)]
    assert all(x < y for x, y in zip(sizes, sizes[1:]))
    sizes = [two_proportions(0.10, 0.12, power=p).total_exact for p in (0.5, 0.7, 0.8, 0.9, 0.99)]
    assert all(x < y for x, y in zip(sizes, sizes[1:]))
    sizes = [two_proportions(0.10, 0.12, alpha=a).total_exact for a in (0.2, 0.1, 0.05, 0.01, 0.001)]
    assert all(x < y for x, y in zip(sizes, sizes[1:]))
    sizes = [two_means(d, 1.0).total_exact for d in (1.0, 0.5, 0.2, 0.1)]
    assert all(x < y for x, y in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("factor", [0.5, 2.0, 3.0, 10.0])
def test_means_scale_as_inverse_square_of_the_effect(factor: float) -> None:
    base = two_means(0.3, 2.0, treatment_share=0.4).total_exact
    assert two_means(0.3 * factor, 2.0, treatment_share=0.4).total_exact == pytest.approx(base / factor**2, rel=1e-12)
    # and as sd^2
    assert two_means(0.3, 2.0 * factor, treatment_share=0.4).total_exact == pytest.approx(base * factor**2, rel=1e-12)


def test_proportions_approach_inverse_square_for_small_effects() -> None:
    # for small delta the variances barely change: N(delta) delta^2 tends to a constant
    a, b = two_proportions(0.2, 0.2 + 1e-3).total_exact, two_proportions(0.2, 0.2 + 5e-4).total_exact
    assert b / a == pytest.approx(4.0, rel=2e-3)


def test_unequal_split_costs_more_units_minimum_at_half() -> None:
    shares = np.linspace(0.05, 0.95, 19)
    totals = np.array([two_means(0.25, 1.0, treatment_share=float(r)).total_exact for r in shares])
    assert shares[int(np.argmin(totals))] == pytest.approx(0.5)
    # closed form: N(r) / N(1/2) = (1/4) / (r (1 - r))
    np.testing.assert_allclose(totals / totals[9], 0.25 / (shares * (1 - shares)), rtol=1e-12)
    # proportions: also worse away from 1/2 on either side
    half = two_proportions(0.1, 0.12).total_exact
    assert two_proportions(0.1, 0.12, treatment_share=0.2).total_exact > half
    assert two_proportions(0.1, 0.12, treatment_share=0.8).total_exact > half


@pytest.mark.parametrize("r", [0.5, 0.25])
def test_power_function_inverts_the_sample_size(r: float) -> None:
    n = two_proportions(0.10, 0.12, power=0.8, treatment_share=r)
    assert power_two_proportions(0.10, 0.12, n.control, n.treatment) >= 0.8
    assert power_two_proportions(0.10, 0.12, n.control, n.treatment) == pytest.approx(0.8, abs=1e-3)
    assert power_two_proportions(0.10, 0.12, n.control - 2, n.treatment - 2) < 0.8
    assert power_two_proportions(0.10, 0.10 + 1e-9, 100, 100) == pytest.approx(0.05, abs=1e-6)  # -> alpha


# -- simulation ------------------------------------------------------------------------------------


def _simulated_power(p_c: float, p_t: float, n_c: int, n_t: int, alpha: float, reps: int, seed: int) -> float:
    """Share of `reps` simulated experiments where the pooled two-sided z-test rejects."""
    rng = np.random.default_rng(seed)
    x_c, x_t = rng.binomial(n_c, p_c, reps), rng.binomial(n_t, p_t, reps)
    pooled = (x_c + x_t) / (n_c + n_t)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = (x_t / n_t - x_c / n_c) / se
    return float(np.mean(np.abs(z) > norm.ppf(1 - alpha / 2)))


@pytest.mark.parametrize("p_c,p_t,r", [(0.10, 0.12, 0.5), (0.05, 0.06, 0.3), (0.30, 0.27, 0.6)])
def test_monte_carlo_power_at_the_computed_n(p_c: float, p_t: float, r: float) -> None:
    reps = 4000  # standard error of a power near 0.8: sqrt(0.8 * 0.2 / 4000) = 0.0063
    n = two_proportions(p_c, p_t, alpha=0.05, power=0.8, treatment_share=r)
    at_n = _simulated_power(p_c, p_t, n.control, n.treatment, 0.05, reps, seed=1)
    assert at_n == pytest.approx(0.8, abs=0.025)
    # 10% fewer units: below the target, where the power function says
    n_c, n_t = int(0.9 * n.control), int(0.9 * n.treatment)
    fewer = _simulated_power(p_c, p_t, n_c, n_t, 0.05, reps, seed=2)
    expected = power_two_proportions(p_c, p_t, n_c, n_t)
    assert expected < 0.78 and fewer < 0.8
    assert fewer == pytest.approx(expected, abs=0.025)


def test_monte_carlo_type_one_error_is_alpha() -> None:
    n = two_proportions(0.10, 0.12)
    rejected = _simulated_power(0.10, 0.10, n.control, n.treatment, 0.05, 8000, seed=3)
    assert rejected == pytest.approx(0.05, abs=0.0125)  # SE 0.0024


def test_monte_carlo_means() -> None:
    n = two_means(delta=0.5, sd=2.0, power=0.9, treatment_share=0.4)
    rng = np.random.default_rng(4)
    reps = 4000
    c = rng.normal(0.0, 2.0, (reps, n.control)).mean(axis=1)
    t = rng.normal(0.5, 2.0, (reps, n.treatment)).mean(axis=1)
    z = (t - c) / (2.0 * np.sqrt(1 / n.control + 1 / n.treatment))
    assert float(np.mean(np.abs(z) > Z975)) == pytest.approx(0.9, abs=0.02)  # SE 0.0047


# -- bad inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,name,value", [
    ({"alpha": 0.0}, "alpha", "0.0"),
    ({"alpha": 1.5}, "alpha", "1.5"),
    ({"power": 1.0}, "power", "1.0"),
    ({"power": -0.2}, "power", "-0.2"),
    ({"treatment_share": 0.0}, "treatment_share", "0.0"),
    ({"treatment_share": 1.2}, "treatment_share", "1.2"),
    ({"p_control": 0.0}, "p_control", "0.0"),
    ({"p_treatment": 1.0}, "p_treatment", "1.0"),
    ({"p_control": float("nan")}, "p_control", "nan"),
    ({"p_treatment": 0.1}, "p_treatment", "0.1"),  # zero effect
    ({"h0_variance": "exact"}, "h0_variance", "'exact'"),
])
def test_bad_proportion_inputs_name_the_parameter(kwargs: dict, name: str, value: str) -> None:
    args = {"p_control": 0.1, "p_treatment": 0.12, **kwargs}
    with pytest.raises(ValueError) as err:
        two_proportions(**args)
    assert name in str(err.value) and value in str(err.value)


@pytest.mark.parametrize("kwargs,name,value", [
    ({"delta": 0.0}, "delta", "0.0"),
    ({"sd": 0.0}, "sd", "0.0"),
    ({"sd": -1.0}, "sd", "-1.0"),
    ({"alpha": 1.0}, "alpha", "1.0"),
    ({"power": 0.0}, "power", "0.0"),
    ({"treatment_share": 1.0}, "treatment_share", "1.0"),
])
def test_bad_mean_inputs_name_the_parameter(kwargs: dict, name: str, value: str) -> None:
    args = {"delta": 0.5, "sd": 1.0, **kwargs}
    with pytest.raises(ValueError) as err:
        two_means(**args)
    assert name in str(err.value) and value in str(err.value)


def test_rounding_up_forgives_float_noise_only() -> None:
    from reprflow.components.ab_prep.sample_size import _ceil

    assert _ceil(62.000000000001) == 62 and _ceil(62.0001) == 63 and _ceil(0.2) == 1


def test_power_needs_a_positive_arm_size() -> None:
    for n in (0, -5):
        with pytest.raises(ValueError, match="n_control"):
            power_two_proportions(0.10, 0.12, n, 100)
