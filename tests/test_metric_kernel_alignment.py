"""Centred kernel-target alignment: the n x n definition, its invariances and its extremes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reprflow.components.evaluate_predictability.metrics.kernel_alignment import centered_kernel_alignment

RNG = np.random.default_rng(0)


def alignment_by_definition(z: np.ndarray, y: np.ndarray) -> float:
    n = z.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    kc, lc = h @ (z @ z.T) @ h, h @ (y @ y.T) @ h
    return float(np.sum(kc * lc) / (np.linalg.norm(kc) * np.linalg.norm(lc)))


@pytest.mark.parametrize("n,d", [(12, 4), (5, 12)])
def test_equals_the_n_by_n_definition(n: int, d: int) -> None:
    z = RNG.normal(size=(n, d)) + 2.0
    y = RNG.normal(size=(n, 3)) @ RNG.normal(size=(3, 3)) + z[:, :1]
    assert centered_kernel_alignment(z, y) == pytest.approx(alignment_by_definition(z, y), rel=1e-12)
    labels = np.arange(n) % 3 + 10
    onehot = np.eye(3)[labels - 10]
    assert centered_kernel_alignment(z, labels) == pytest.approx(alignment_by_definition(z, onehot), rel=1e-12)


def test_invariant_to_rotation_isotropic_scaling_and_translation() -> None:
    z = RNG.normal(size=(50, 6))
    labels = RNG.integers(0, 4, size=50)
    base = centered_kernel_alignment(z, labels)
    q = ortho_group.rvs(6, random_state=1)
    assert centered_kernel_alignment(z @ q, labels) == pytest.approx(base, rel=1e-10)
    assert centered_kernel_alignment(7.5 * z, labels) == pytest.approx(base, rel=1e-10)
    assert centered_kernel_alignment(z + RNG.normal(size=6), labels) == pytest.approx(base, rel=1e-10)
    # anisotropic scaling is not an invariance
    assert centered_kernel_alignment(z * np.array([10, 1, 1, 1, 1, 1]), labels) != pytest.approx(base, rel=1e-3)


def test_one_when_the_feature_kernel_is_the_target_kernel_up_to_scale() -> None:
    # A = 1 exactly when Kc = c Lc, c > 0: features Y B + t with B B' = c I (rotation, scale, shift).
    labels = RNG.integers(0, 5, size=40)
    onehot = np.eye(5)[labels]
    assert centered_kernel_alignment(onehot, labels) == pytest.approx(1.0, abs=1e-12)
    q = ortho_group.rvs(5, random_state=2)
    assert centered_kernel_alignment(3 * onehot @ q + 1.0, labels) == pytest.approx(1.0, abs=1e-12)
    y = RNG.normal(size=(40, 2))
    assert centered_kernel_alignment(np.hstack([y, np.zeros((40, 3))]) @ q, y) == pytest.approx(1.0, abs=1e-12)


def test_near_zero_for_random_features() -> None:
    # E[A] is about sqrt(D C) / n for features independent of the targets
    n = 4000
    value = centered_kernel_alignment(RNG.normal(size=(n, 8)), RNG.integers(0, 3, size=n))
    assert 0.0 <= value < 0.01


def test_zero_when_either_side_is_constant() -> None:
    z = RNG.normal(size=(20, 3))
    assert centered_kernel_alignment(np.full((20, 3), 0.1), RNG.integers(0, 2, size=20)) == 0.0
    assert centered_kernel_alignment(z, np.full(20, 4)) == 0.0


def test_bad_inputs_raise() -> None:
    z = RNG.normal(size=(10, 3))
    with pytest.raises(ValueError, match="n=10"):
        centered_kernel_alignment(z, np.arange(9))
    with pytest.raises(ValueError, match="integer class labels"):
        centered_kernel_alignment(z, RNG.normal(size=10))
    with pytest.raises(ValueError):
        centered_kernel_alignment(z[:, 0], np.arange(10))
