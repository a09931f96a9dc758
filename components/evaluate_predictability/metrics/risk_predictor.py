"""Predicted downstream test risk of ridge regression and PCR on a frozen feature map.

Setting. Centred features x in R^p with population covariance
Sigma = V diag(lambda_1..p) V' (estimated from a large unlabelled pool), and

    y = x'beta* + u + e,

where beta* = Sigma^+ E[x y] is the population least-squares coefficient, u is
the part of y the features cannot express linearly (E[x u] = 0, Var u =
sigma_u^2, called ``unexplained``) and e is label noise independent of
everything (Var e = sigma^2, called ``noise``). Everything is computed in the
eigenbasis of Sigma: ``eigenvalues`` lambda (p,) and ``signal`` b = V'beta*
(p,), so the signal power along direction i is lambda_i b_i^2. A predictor
beta_hat fitted on n i.i.d. labelled rows has test risk

    R = E_{x,y}(y - x'beta_hat)^2
      = (beta_hat - beta*)' Sigma (beta_hat - beta*)  +  sigma^2 + sigma_u^2,

the first term being the excess risk and sigma_eff^2 = sigma^2 + sigma_u^2 the
irreducible risk of any linear predictor on x. Curves are expectations over
the n training rows, reported as bias + variance_noise + variance_unexplained
(= excess) + irreducible (= total).

Ridge. beta_hat = argmin_b (1/n)||y - X b||^2 + lam ||b||^2
= (X'X/n + lam I)^{-1} X'y/n on centred rows, no intercept; lam >= 0, and
lam = 0 means the limit lam -> 0+ (minimum-norm least squares). With

    df1(kappa) = tr Sigma (Sigma + kappa I)^{-1}   = sum_i lambda_i / (lambda_i + kappa),
    df2(kappa) = tr Sigma^2 (Sigma + kappa I)^{-2} = sum_i lambda_i^2 / (lambda_i + kappa)^2,

the effective regularisation kappa is the positive root of

    kappa = lam + kappa df1(kappa) / n      (equivalently lam = kappa (1 - df1(kappa)/n)).

For lam > 0 the map kappa -> kappa (1 - df1(kappa)/n) is convex, 0 at 0 and
eventually increasing, so the root is unique, kappa > lam, and 1 - df2/n > 0 at
it. For lam = 0: if n < r = #{lambda_i > 0}, kappa > 0 solves df1(kappa) = n;
otherwise kappa = 0 and df2 = r. The deterministic equivalent (proportional
limit n, p -> inf, exact in the limit for Gaussian x, up to O(1/n) corrections
at finite size) is

    bias          = kappa^2 sum_i lambda_i b_i^2 / (lambda_i + kappa)^2  /  (1 - df2/n)
    variance_noise        = sigma^2   (df2/n) / (1 - df2/n)
    variance_unexplained  = sigma_u^2 (df2/n) / (1 - df2/n)

(Hastie, Montanari, Rosset, Tibshirani, "Surprises in high-dimensional
ridgeless least squares interpolation", Ann. Statist. 2022; Bach,
"High-dimensional analysis of double descent for linear regression with random
projections", SIMODS 2024; Atanasov, Zavatone-Veth, Pehlevan, "Scaling and
renormalization in high-dimensional regression", 2024, whose
1/(1 - gamma) with gamma = df2/n is the same factor). ``ridge_risk`` uses it for
every n; at lam = 0 and n > r it gives sigma_eff^2 r/(n - r), whereas the exact
Gaussian-design value is sigma_eff^2 r/(n - r - 1). For Sigma = I and
gamma = p/n, lam -> 0 gives the Marchenko-Pastur ridgeless risks
sigma^2 gamma/(1 - gamma) (gamma < 1) and ||beta*||^2 (1 - 1/gamma)
+ sigma^2/(gamma - 1) (gamma > 1).

u enters the estimator exactly like e when u is independent of x (e.g. the
signal of features that are missing from x); when u is merely uncorrelated with
x (a nonlinear function of x) the deterministic equivalent still treats it as
homoscedastic noise of variance sigma_u^2, which is the Gaussian-equivalence
approximation. The two variance parts therefore always have the same shape in
n, scaled by sigma^2 and sigma_u^2, and are reported separately only so the
origin of the variance is visible.

PCR with k components (Yoon, Hsu et al., "Understanding Optimal Feature
Transfer via a Fine-Grained Bias-Variance Analysis"): least squares (minimum
norm when n < k) on z = V_k'x, the top-k population eigen-directions, whose
covariance is diag(lambda_1..k). The discarded directions' signal
D = sum_{i>k} lambda_i b_i^2 becomes part of the effective noise of the k-dim
problem, sigma_k^2 = sigma^2 + sigma_u^2 + D, and also stays in the risk as an
approximation bias that no n removes:

    n >= k + 2 (exact for Gaussian x and u independent of z: OLS is unbiased
    and E (Z'Z)^{-1} = diag(lambda_1..k)^{-1} / (n - k - 1)):
        bias = D,  variance_noise = sigma^2 k/(n-k-1),
        variance_unexplained = (sigma_u^2 + D) k/(n-k-1);
    n <= k - 2: the ridgeless deterministic equivalent above on the k-dim
        problem (spectrum lambda_1..k, signal b_1..k, noise sigma_k^2), plus D
        in the bias (asymptotic, not exact);
    n in {k-1, k, k+1}: the variances are infinite (the first inverse moment
        of the n x k Gaussian design's Gram matrix exists only for |n - k| >= 2);
        bias = D, plus the deterministic-equivalent in-span bias at n = k - 1.

Units: eigenvalues in (feature units)^2, signal in target units per feature
unit, noise / unexplained / risks in target units squared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

__all__ = ["RiskCurve", "pcr_risk", "ridge_risk", "risk_from_features", "solve_kappa"]

_EPS = float(np.finfo(np.float64).eps)
_RTOL = 4.0 * _EPS  # brentq's smallest admissible relative tolerance is 4 eps


@dataclass(frozen=True)
class RiskCurve:
    """Predicted test risk over a grid of labelled-sample sizes; all arrays (m,).

    n: sample sizes. kappa: effective regularisation (ridge), or that of the
    k-dim ridgeless problem for PCR (0 where n >= k). bias, variance_noise,
    variance_unexplained: the three parts of the excess risk. irreducible:
    noise + unexplained (the risk of beta* itself). total: excess + irreducible.
    Entries are inf where the risk diverges (interpolation threshold).
    """

    n: np.ndarray
    kappa: np.ndarray
    bias: np.ndarray
    variance_noise: np.ndarray
    variance_unexplained: np.ndarray
    irreducible: np.ndarray
    total: np.ndarray

    @property
    def excess(self) -> np.ndarray:
        """bias + variance_noise + variance_unexplained."""
        return self.bias + self.variance_noise + self.variance_unexplained


def _as_spectrum(eigenvalues: np.ndarray) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty (p,) array, got shape {lam.shape}")
    if not np.isfinite(lam).all():
        raise ValueError("eigenvalues contain NaN or inf")
    if (lam < 0).any():
        raise ValueError("eigenvalues must be >= 0 (a covariance spectrum)")
    if not (lam > 0).any():
        raise ValueError("eigenvalues are all zero")
    return lam


def _as_signal(signal: np.ndarray, p: int) -> np.ndarray:
    b = np.asarray(signal, dtype=np.float64)
    if b.shape != (p,):
        raise ValueError(f"signal must have shape ({p},) like eigenvalues, got {b.shape}")
    if not np.isfinite(b).all():
        raise ValueError("signal contains NaN or inf")
    return b


def _as_variance(value: float, name: str) -> float:
    v = float(value)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite variance >= 0, got {value}")
    return v


def _as_lam(lam: float) -> float:
    v = float(lam)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"lam must be finite and >= 0, got {lam}")
    return v


def _as_sizes(n: int | np.ndarray) -> np.ndarray:
    a = np.atleast_1d(np.asarray(n))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"n must be an integer or a non-empty 1-D array of integers, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"n must be integers, got dtype {a.dtype}")
    f = a.astype(np.float64)
    if not (np.isfinite(f).all() and (f == np.round(f)).all() and (f >= 1).all()):
        raise ValueError("n must be integers >= 1")
    return f


def _kappa(pos: np.ndarray, n: float, lam: float) -> float:
    """Root of kappa = lam + kappa df1(kappa)/n over the positive eigenvalues ``pos``."""
    rank = pos.size
    trace = float(pos.sum())
    if lam == 0.0:
        if rank <= n:
            return 0.0
        # df1 decreases from rank > n at 0 to below trace/kappa, which is n at kappa = trace/n
        return float(brentq(lambda k: (pos / (pos + k)).sum() - n, 0.0, trace / n, xtol=1e-300, rtol=_RTOL))
    # g(kappa) = kappa (1 - df1/n) - lam: convex, -lam at 0, >= 0 at lam + trace/n. Written with
    # 1 - df1/n = ((n - rank) + sum kappa/(lambda_i + kappa)) / n: no cancellation when n = rank,
    # where the root is about sqrt(lam n / sum 1/lambda_i), far below the bracket's top for a tiny
    # lam (hence the iterations to spare: Brent may bisect all the way down).
    hi = lam + trace / n
    return float(brentq(lambda k: k * ((n - rank) + (k / (pos + k)).sum()) / n - lam, 0.0, hi,
                        xtol=1e-300, rtol=_RTOL, maxiter=2000))


def solve_kappa(eigenvalues: np.ndarray, n: int, lam: float) -> float:
    """Effective regularisation kappa of ridge with penalty lam on n samples.

    eigenvalues: (p,) spectrum of Sigma (>= 0). Solves
    kappa = lam + (kappa/n) sum_i lambda_i/(lambda_i + kappa); for lam = 0 the
    ridgeless limit (df1(kappa) = n if n < rank, else 0).
    """
    lam_ = _as_lam(lam)
    spectrum = _as_spectrum(eigenvalues)
    sizes = _as_sizes(n)
    if sizes.size != 1:
        raise ValueError("solve_kappa takes one n; loop or use ridge_risk for a grid")
    return _kappa(spectrum[spectrum > 0], float(sizes[0]), lam_)


def _deterministic_parts(
    spectrum: np.ndarray, signal: np.ndarray, n: float, lam: float
) -> tuple[float, float, float]:
    """(kappa, bias, variance factor) with variance = sigma^2 * factor; inf where it diverges."""
    pos = spectrum > 0
    lam_p, power = spectrum[pos], spectrum[pos] * signal[pos] ** 2
    kappa = _kappa(lam_p, n, lam)
    ratio = lam_p / (lam_p + kappa)
    df2 = float((ratio * ratio).sum())
    denom = 1.0 - df2 / n
    if kappa == 0.0:
        bias_num = 0.0  # ridgeless with n >= rank: unbiased on the span of Sigma
    else:
        shrink = kappa / (lam_p + kappa)
        bias_num = float((power * shrink * shrink).sum())
    if denom <= 0.0:
        # only at lam = 0 and n = rank (or rounding right next to it)
        return kappa, (np.inf if bias_num > 0 else 0.0), np.inf
    return kappa, bias_num / denom, (df2 / n) / denom


def _scaled(variance: float, factor: float) -> float:
    return 0.0 if variance == 0.0 else variance * factor


def _curve(
    n: np.ndarray,
    kappa: list[float],
    bias: list[float],
    v_noise: list[float],
    v_unexp: list[float],
    irreducible: float,
) -> RiskCurve:
    b, vn, vu = np.array(bias), np.array(v_noise), np.array(v_unexp)
    irr = np.full(n.shape, irreducible)
    return RiskCurve(
        n=n.astype(np.int64),
        kappa=np.array(kappa),
        bias=b,
        variance_noise=vn,
        variance_unexplained=vu,
        irreducible=irr,
        total=b + vn + vu + irr,
    )


def ridge_risk(
    eigenvalues: np.ndarray,
    signal: np.ndarray,
    n: int | np.ndarray,
    lam: float,
    noise: float,
    unexplained: float = 0.0,
) -> RiskCurve:
    """Deterministic-equivalent test risk of ridge (penalty lam >= 0) for each n.

    eigenvalues (p,): spectrum of Sigma; signal (p,): beta* in its eigenbasis;
    n: int or (m,) integers; noise, unexplained: sigma^2 and sigma_u^2.
    """
    spectrum = _as_spectrum(eigenvalues)
    b = _as_signal(signal, spectrum.size)
    lam_ = _as_lam(lam)
    s2, su2 = _as_variance(noise, "noise"), _as_variance(unexplained, "unexplained")
    sizes = _as_sizes(n)
    kappa, bias, v_noise, v_unexp = [], [], [], []
    for m in sizes:
        k, bi, factor = _deterministic_parts(spectrum, b, float(m), lam_)
        kappa.append(k)
        bias.append(bi)
        v_noise.append(_scaled(s2, factor))
        v_unexp.append(_scaled(su2, factor))
    return _curve(sizes, kappa, bias, v_noise, v_unexp, s2 + su2)


def pcr_risk(
    eigenvalues: np.ndarray,
    signal: np.ndarray,
    n: int | np.ndarray,
    k: int,
    noise: float,
    unexplained: float = 0.0,
) -> RiskCurve:
    """Test risk of least squares on the top-k eigen-directions of Sigma, for each n.

    Exact Gaussian-design formula for n >= k + 2, ridgeless deterministic
    equivalent for n <= k - 2, infinite variance for n in {k-1, k, k+1}; the
    discarded directions' signal is both bias and (through the effective noise)
    variance_unexplained. Ties in the spectrum at the k-th place are broken by
    position (stable sort).
    """
    spectrum = _as_spectrum(eigenvalues)
    b = _as_signal(signal, spectrum.size)
    s2, su2 = _as_variance(noise, "noise"), _as_variance(unexplained, "unexplained")
    sizes = _as_sizes(n)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= spectrum.size:
        raise ValueError(f"k must be an integer in [1, {spectrum.size}], got {k!r}")
    order = np.argsort(-spectrum, kind="stable")
    top, rest = order[:k], order[k:]
    if spectrum[top[-1]] <= 0:
        raise ValueError(f"k = {k} exceeds the number of positive eigenvalues {int((spectrum > 0).sum())}")
    lam_k, b_k = spectrum[top], b[top]
    discarded = float((spectrum[rest] * b[rest] ** 2).sum())
    su2_eff = su2 + discarded
    kappa, bias, v_noise, v_unexp = [], [], [], []
    for m in sizes:
        if m >= k + 2:
            kap, in_span, factor = 0.0, 0.0, k / (m - k - 1.0)
        elif m <= k - 1:
            kap, in_span, factor = _deterministic_parts(lam_k, b_k, float(m), 0.0)
            if m == k - 1:
                factor = np.inf
        else:  # n = k or k + 1: unbiased, infinite variance
            kap, in_span, factor = 0.0, 0.0, np.inf
        kappa.append(kap)
        bias.append(discarded + in_span)
        v_noise.append(_scaled(s2, factor))
        v_unexp.append(_scaled(su2_eff, factor))
    return _curve(sizes, kappa, bias, v_noise, v_unexp, s2 + su2)


def _centred(x: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(x, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] == 0:
        raise ValueError(f"{name} must be an (N, p) matrix with N >= 2, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} contain NaN or inf")
    return f - f.mean(axis=0)


def risk_from_features(
    features: np.ndarray,
    targets: np.ndarray,
    n_grid: int | np.ndarray,
    lam: float | None = None,
    k: int | None = None,
    *,
    noise: float | None = None,
    pool: np.ndarray | None = None,
    stabiliser: float = 1e-8,
) -> dict:
    """Plug-in risk curves from labelled features (N, p) and real targets (N,).

    Sigma is the (1/N) covariance of the centred ``pool`` (an unlabelled (M, p)
    matrix of the same feature map, e.g. all entities' embeddings) if given,
    else of the centred features. beta* is least squares of the centred
    targets on the centred features, with a ridge of ``stabiliser`` times the
    mean eigenvalue of their covariance (directions with eigenvalue below
    max(N, p) eps times the largest are dropped); signal = V'beta* in the
    eigenbasis of Sigma, explained = beta*' Sigma beta* and residual = mean
    squared in-sample residual (an underestimate by roughly a factor 1 - p/N).

    The residual variance cannot be split into noise and unexplained from one
    data set: by default all of it is ``noise`` and unexplained = 0; a caller
    who knows the label-noise variance (repeat measurements) passes ``noise``
    and gets unexplained = max(residual - noise, 0). The split changes only
    how the variance is labelled, not the total.

    Returns a dict with "eigenvalues" (p,) descending, "signal" (p,),
    "target_variance", "explained", "residual", "noise", "unexplained", and the
    curves "ridge" (if lam is given) and "pcr" (if k is given).
    """
    if lam is None and k is None:
        raise ValueError("give lam (ridge curve), k (PCR curve) or both")
    if not (np.isfinite(stabiliser) and stabiliser >= 0):
        raise ValueError(f"stabiliser must be finite and >= 0, got {stabiliser}")
    f = _centred(features, "features")
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (f.shape[0],):
        raise ValueError(f"targets must have shape ({f.shape[0]},) to match features, got {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("targets contain NaN or inf")
    y = y - y.mean()
    big_n, p = f.shape

    # beta* from the labelled rows, through the eigenbasis of their covariance
    d, u = np.linalg.eigh(f.T @ f / big_n)
    keep = d > max(big_n, p) * _EPS * max(float(d[-1]), 0.0)
    if not keep.any():
        raise ValueError("features are constant; there is nothing to regress on")
    delta = stabiliser * float(d[keep].mean())
    c = u.T @ (f.T @ y) / big_n
    coef = np.where(keep, c / np.where(keep, d + delta, 1.0), 0.0)
    beta = u @ coef
    resid = y - f @ beta
    residual = float(resid @ resid) / big_n

    if pool is None:
        eig, vec = d, u
    else:
        g = _centred(pool, "pool")
        if g.shape[1] != p:
            raise ValueError(f"pool has {g.shape[1]} columns but features have {p}")
        eig, vec = np.linalg.eigh(g.T @ g / g.shape[0])
    eig, vec = eig[::-1].copy(), vec[:, ::-1]
    rows = big_n if pool is None else g.shape[0]  # the same rank rule as for beta* above
    eig[eig < max(rows, p) * _EPS * max(float(eig[0]), 0.0)] = 0.0
    if not (eig > 0).any():
        raise ValueError("pool is constant; Sigma is zero")
    signal = vec.T @ beta

    if noise is None:
        s2, su2 = residual, 0.0
    else:
        s2 = _as_variance(noise, "noise")
        su2 = max(residual - s2, 0.0)
    out: dict = {
        "eigenvalues": eig,
        "signal": signal,
        "target_variance": float(y @ y) / big_n,
        "explained": float((eig * signal**2).sum()),
        "residual": residual,
        "noise": s2,
        "unexplained": su2,
    }
    if lam is not None:
        out["ridge"] = ridge_risk(eig, signal, n_grid, lam, s2, su2)
    if k is not None:
        out["pcr"] = pcr_risk(eig, signal, n_grid, k, s2, su2)
    return out
