"""Sample size per arm of a two-arm experiment, two-sided test, unequal allocation.

Notation: the treatment gets a share r of the randomisation units (0 < r < 1), the control 1 - r;
N is the total, n_t = r N and n_c = (1 - r) N. z_a = Phi^-1(1 - alpha / 2), z_b = Phi^-1(power).
Each arm's size is rounded up on its own (so each arm has at least its share), and the total is
the sum of the rounded arms. Only the far rejection tail counts towards power (the near tail adds
less than alpha / 2 of the sign-flipped probability, conventionally ignored), as in every
textbook formula.

References:
  - J. L. Fleiss, B. Levin, M. C. Paik, "Statistical Methods for Rates and Proportions", 3rd ed.
    (Wiley, 2003), chapter 4 (sample sizes for comparing two proportions, equal and unequal
    allocation): pooled variance under H0, unpooled under H1, here without the continuity correction.
  - S.-C. Chow, J. Shao, H. Wang, "Sample Size Calculations in Clinical Research", 2nd ed.
    (Chapman & Hall/CRC, 2008), section 3.2 (two-sample means, allocation ratio kappa) and
    section 4.2 (two-sample proportions, unpooled variance under both hypotheses).
  - R's `stats::power.prop.test` implements the pooled/unpooled formula for equal arms; its
    documented example `power.prop.test(p1 = .50, p2 = .75, power = .90)` gives n = 76.7 per arm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy.stats import norm


@dataclass(frozen=True)
class SampleSize:
    """Units per arm (rounded up) and in total; `total_exact` is the unrounded N of the formula."""

    control: int
    treatment: int
    total: int
    total_exact: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _ceil(x: float) -> int:
    """Round up, forgiving float noise (62.000000000001 is 62)."""
    return max(1, math.ceil(round(x, 9)))


def _split(total_exact: float, r: float) -> SampleSize:
    control, treatment = _ceil((1 - r) * total_exact), _ceil(r * total_exact)
    return SampleSize(control, treatment, control + treatment, total_exact)


def _z(alpha: float, power: float) -> tuple[float, float]:
    alpha, power = _check_fraction("alpha", alpha), _check_fraction("power", power)
    return float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))


def two_proportions(
    p_control: float,
    p_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: float = 0.5,
    h0_variance: Literal["pooled", "unpooled"] = "pooled",
) -> SampleSize:
    """Units per arm to detect p_treatment != p_control with a two-sided two-proportion z-test.

    Normal approximation, no continuity correction, delta = p_t - p_c, q = 1 - p, r = treatment share:

        N = [ z_a * sqrt( pbar qbar (1/r + 1/(1-r)) ) + z_b * sqrt( p_t q_t / r + p_c q_c / (1-r) ) ]^2 / delta^2

    with pbar = r p_t + (1 - r) p_c, the rate pooled over the arms under H0 (Fleiss, Levin & Paik
    2003, ch. 4, with the allocation ratio k = n_t / n_c = r / (1 - r)). With
    `h0_variance="unpooled"` the H0 term uses the H1 variances too, which collapses to Chow, Shao &
    Wang (2008, sec. 4.2): N = (z_a + z_b)^2 (p_t q_t / r + p_c q_c / (1-r)) / delta^2.
    Then n_t = ceil(r N), n_c = ceil((1 - r) N).

    Equal split, p_c = 0.10, p_t = 0.12, alpha 0.05, power 0.8: 3,840.85 -> 3,841 per arm (pooled;
    what R's power.prop.test gives) and 3,838.10 -> 3,839 per arm (unpooled).
    """
    p_c, p_t = _check_fraction("p_control", p_control), _check_fraction("p_treatment", p_treatment)
    r = _check_fraction("treatment_share", treatment_share)
    if p_t == p_c:
        raise ValueError(f"p_treatment must differ from p_control (zero effect), got both {p_c!r}")
    if h0_variance not in ("pooled", "unpooled"):
        raise ValueError(f"h0_variance must be 'pooled' or 'unpooled', got {h0_variance!r}")
    z_a, z_b = _z(alpha, power)
    var_h1 = p_t * (1 - p_t) / r + p_c * (1 - p_c) / (1 - r)  # N Var(p_t_hat - p_c_hat) under H1
    if h0_variance == "pooled":
        pbar = r * p_t + (1 - r) * p_c
        var_h0 = pbar * (1 - pbar) * (1 / r + 1 / (1 - r))
    else:
        var_h0 = var_h1
    total = (z_a * math.sqrt(var_h0) + z_b * math.sqrt(var_h1)) ** 2 / (p_t - p_c) ** 2
    return _split(total, r)


def two_means(
    delta: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: float = 0.5,
) -> SampleSize:
    """Units per arm to detect a difference `delta` of two means with a common standard deviation `sd`.

    Two-sided z-test (known sd, normal approximation), r = treatment share (Chow, Shao & Wang 2008,
    sec. 3.2, with n_t = kappa n_c and kappa = r / (1 - r)):

        N = (z_a + z_b)^2 sd^2 (1/r + 1/(1-r)) / delta^2 = (z_a + z_b)^2 sd^2 / (r (1-r) delta^2)

    so N is smallest at r = 1/2 and grows as 1/delta^2. Then n_t = ceil(r N), n_c = ceil((1 - r) N).
    Equal split, delta = 0.5 sd, alpha 0.05, power 0.8: 62.79 -> 63 per arm (the t-test tables of
    Cohen 1988, ch. 2, give 64: the normal approximation runs about one unit low for small n).
    """
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not math.isfinite(delta) or delta == 0:
        raise ValueError(f"delta must be a non-zero finite number (zero effect), got {delta!r}")
    sd = _check_positive("sd", sd)
    r = _check_fraction("treatment_share", treatment_share)
    z_a, z_b = _z(alpha, power)
    total = (z_a + z_b) ** 2 * sd**2 / (r * (1 - r) * delta**2)
    return _split(total, r)


def power_two_proportions(
    p_control: float,
    p_treatment: float,
    n_control: int,
    n_treatment: int,
    alpha: float = 0.05,
) -> float:
    """Approximate power of the two-sided pooled two-proportion z-test at the given arm sizes.

        power = Phi( (|delta| - z_a s0) / s1 ) + Phi( (-|delta| - z_a s0) / s1 )

    with s0^2 = pbar qbar (1/n_t + 1/n_c), pbar = (n_t p_t + n_c p_c) / (n_t + n_c), and
    s1^2 = p_t q_t / n_t + p_c q_c / n_c: the normal approximation that `two_proportions` inverts
    (Fleiss, Levin & Paik 2003, ch. 4), both rejection tails included.
    """
    p_c, p_t = _check_fraction("p_control", p_control), _check_fraction("p_treatment", p_treatment)
    alpha = _check_fraction("alpha", alpha)
    for name, n in (("n_control", n_control), ("n_treatment", n_treatment)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    z_a = float(norm.ppf(1 - alpha / 2))
    pbar = (n_treatment * p_t + n_control * p_c) / (n_treatment + n_control)
    s0 = math.sqrt(pbar * (1 - pbar) * (1 / n_treatment + 1 / n_control))
    s1 = math.sqrt(p_t * (1 - p_t) / n_treatment + p_c * (1 - p_c) / n_control)
    d = abs(p_t - p_c)
    return float(norm.cdf((d - z_a * s0) / s1) + norm.cdf((-d - z_a * s0) / s1))
