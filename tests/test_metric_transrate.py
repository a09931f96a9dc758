"""TransRate: the n x n coding-rate definition, non-negativity by concavity, separation and invariances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reprflow.components.evaluate_predictability.metrics.transrate import coding_rate, transrate

RNG = np.random.default_rng(0)


def rate_by_definition(z: np.ndarray, d: int, eps: float) -> float:
    """1/2 logdet(I_m + d / (m eps^2) Z Z'), the m x m side of Sylvester's identity."""
    m = z.shape[0]
    sign, logdet = np.linalg.slogdet(np.eye(m) + d / (m * eps**2) * z @ z.T)
    assert sign > 0
    return 0.5 * logdet


def transrate_by_definition(f: np.ndarray, labels: np.ndarray, eps: float) -> float:
    n, d = f.shape
    z = f - f.mean(axis=0)
    conditional = 0.0
    for c in np.unique(labels):
        z_c = z[labels == c]
        conditional += len(z_c) / n * rate_by_definition(z_c, d, eps)
    return rate_by_definition(z, d, eps) - conditional


def clustered(n: int, d: int, c: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    return sep * rng.normal(size=(c, d))[labels] + rng.normal(size=(n, d)), labels


@pytest.mark.parametrize("n,d,c", [(60, 4, 3), (30, 8, 2), (12, 20, 3), (80, 10, 5)])
@pytest.mark.parametrize("eps", [1e-4, 0.05, 1.0])
def test_equals_the_n_by_n_definition(n: int, d: int, c: int, eps: float) -> None:
    # n > D (and n_c < D for some classes) exercises the D x D side against the n x n one
    f, labels = clustered(n, d, c, sep=1.0, seed=n + d)
    labels = np.array([4, -1, 10, 2, 7])[labels]
    # At eps = 1e-4 the n x n reference is the weak side: LU of I + 1e8 D/n Z Z' resolves its n - D
    # unit eigenvalues only to ~1e-7 next to the ~1e9 ones; the singular values carry no such loss.
    rel = 1e-6 if eps < 1e-2 else 1e-10
    assert transrate(f, labels, eps) == pytest.approx(transrate_by_definition(f, labels, eps), rel=rel)


def test_coding_rate_is_the_log_determinant() -> None:
    z = RNG.normal(size=(50, 6)) * np.array([1e-3, 1, 1, 2, 5, 100])
    n, d = z.shape
    want = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * 0.1**2) * z.T @ z)[1]
    assert coding_rate(z, eps=0.1) == pytest.approx(want, rel=1e-12)
    assert coding_rate(z, eps=0.1) == pytest.approx(rate_by_definition(z, d, 0.1), rel=1e-10)
    assert coding_rate(np.zeros((5, 3))) == 0.0
    # a rank-2 block has only two non-zero terms; zero columns add log(1 + 0) = 0 each, but widen D
    r2 = RNG.normal(size=(40, 2))
    padded = np.hstack([r2, np.zeros((40, 3))])
    assert coding_rate(padded, eps=0.5) == pytest.approx(
        0.5 * np.log1p(5 / (40 * 0.25) * np.linalg.svd(r2, compute_uv=False) ** 2).sum(), rel=1e-12
    )


def test_non_negative_by_concavity_of_logdet() -> None:
    # I + D/(n eps^2) Z'Z is the n_c/n-weighted average of I + D/(n_c eps^2) Z_c'Z_c
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n, d = int(rng.integers(5, 80)), int(rng.integers(1, 12))
        f = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        labels = rng.integers(0, int(rng.integers(1, 6)), size=n)
        for eps in (1e-4, 0.3, 3.0):
            assert transrate(f, labels, eps) >= -1e-9


def test_zero_when_every_class_has_the_same_second_moment() -> None:
    # Jensen's equality case: I + D/(n_c eps^2) Z_c'Z_c equal for all c. Class 0 = {x, -x}, class 1
    # = two copies of it (n_1 = 2 n_0): same Z_c'Z_c / n_c, global mean 0. Scaling by n instead of
    # n_c inside each class rate would break the equality.
    x = RNG.normal(size=(15, 4))
    base = np.vstack([x, -x])
    f = np.vstack([base, base, base])
    labels = np.repeat([0, 1, 1], 30)
    assert transrate(f, labels) == pytest.approx(0.0, abs=1e-9)
    assert transrate(f, np.zeros(90, dtype=int)) == 0.0


def test_grows_with_class_separation() -> None:
    n, d, c = 300, 6, 4
    rng = np.random.default_rng(1)
    labels = rng.integers(0, c, size=n)
    means, noise = rng.normal(size=(c, d)), rng.normal(size=(n, d))
    values = [transrate(sep * means[labels] + noise, labels) for sep in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert values[0] >= 0.0
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert values[-1] > 1.0 > values[0] + 0.5
    # well-separated classes against random labels on the same features
    f = 4.0 * means[labels] + noise
    assert transrate(f, labels) > 5 * transrate(f, rng.integers(0, c, size=n))


def test_invariant_to_orthogonal_maps_translation_permutation_and_relabelling() -> None:
    f, labels = clustered(120, 7, 3, sep=1.5, seed=2)
    base = transrate(f, labels)
    q = ortho_group.rvs(7, random_state=3)
    assert transrate(f @ q + RNG.normal(size=7) * 5, labels) == pytest.approx(base, rel=1e-10)
    perm = RNG.permutation(120)
    assert transrate(f[perm], labels[perm]) == pytest.approx(base, rel=1e-12)
    assert transrate(f, np.array([9, -5, 0])[labels]) == pytest.approx(base, rel=1e-12)
    # eps is an absolute distortion: scaling features by a equals scaling eps by a. (At small eps
    # and full-rank classes every a s^2 >> 1 and the scale nearly cancels from the difference.)
    assert transrate(3.0 * f, labels, eps=3.0) == pytest.approx(transrate(f, labels, eps=1.0), rel=1e-10)
    assert transrate(3.0 * f, labels, eps=1.0) != pytest.approx(transrate(f, labels, eps=1.0), rel=1e-2)


def test_tiny_eps_does_not_overflow() -> None:
    f, labels = clustered(40, 3, 2, sep=2.0, seed=4)
    value = transrate(f, labels, eps=1e-200)
    assert np.isfinite(value) and value > 0


def test_bad_inputs_raise() -> None:
    f = RNG.normal(size=(10, 3))
    labels = np.arange(10) % 2
    with pytest.raises(ValueError, match="n=10"):
        transrate(f, labels[:9])
    with pytest.raises(ValueError, match="integer class labels"):
        transrate(f, RNG.normal(size=10))
    with pytest.raises(ValueError, match="1-D"):
        transrate(f, labels[:, None])
    with pytest.raises(ValueError, match="NaN"):
        transrate(np.where(f > 1, np.nan, f), labels)
    with pytest.raises(ValueError):
        transrate(f[:, 0], labels)
    for eps in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="eps"):
            transrate(f, labels, eps=eps)
