"""How well a predictability metric's ranking of candidates agrees with the downstream result.

Kendall's tau-b (ties allowed) and Vigna's weighted tau ("A Weighted Correlation Index for
Rankings with Ties", WWW 2015; `scipy.stats.weightedtau`, hyperbolic weights), which counts
disagreements among the top-ranked candidates more: model selection only needs the top right.
Inputs: two (c,) arrays of scores over the same c candidates, higher = better.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau, weightedtau


def rank_agreement(metric: np.ndarray, downstream: np.ndarray) -> dict[str, float | None]:
    """{"kendall_tau", "weighted_tau"}; None where undefined (fewer than 2 candidates, constants)."""
    metric, downstream = np.asarray(metric, float), np.asarray(downstream, float)
    if metric.shape != downstream.shape or metric.ndim != 1:
        raise ValueError(f"score arrays must be 1-D and of equal length, got {metric.shape} and {downstream.shape}")
    ok = np.isfinite(metric) & np.isfinite(downstream)
    if ok.sum() < 2 or np.ptp(metric[ok]) == 0 or np.ptp(downstream[ok]) == 0:
        return {"kendall_tau": None, "weighted_tau": None}
    return {
        "kendall_tau": float(kendalltau(metric[ok], downstream[ok]).statistic),
        "weighted_tau": float(weightedtau(metric[ok], downstream[ok]).statistic),
    }
