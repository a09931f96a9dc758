"""The featurizer family compared on one footing, so that the default is chosen on evidence.

Each variant (kernel, anchor count m relative to the configured one, anchor rule, seed-spread
block, quantile bins) is fitted on the run's embedding set and scored the way the pipeline scores
representations (downstream_train.models.seed_study): single-seed features S_k (one model per
seed; swap = served another seed's S_k) and the seed mean (leave-one-seed-out, as fpr_seedmean).
The spread block and binning are properties of the seed mean, so they have no single-seed row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reprflow.components.common.tasks import Task
from reprflow.components.downstream_train.models import seed_study
from reprflow.components.featurize.fpr import FPRFeaturizer
from reprflow.components.featurize.strategies import leave_one_out

# name -> FPRFeaturizer.fit arguments; "m" is a multiple of the anchor count in use, min(anchors, n)
VARIANTS: dict[str, dict[str, Any]] = {
    "cosine": {},
    "dot": {"kernel": "dot"},
    "rbf": {"kernel": "rbf"},
    "cosine, m/4": {"m": 0.25},
    "cosine, 4m": {"m": 4.0},
    "cosine, k-means++ anchors": {"anchor_rule": "kmeans++"},
    "cosine + seed spread": {"seed_spread": True},
    "cosine, 10 quantile bins": {"quantile_bins": 10},
}
STUDY_KEYS = ("downstream_mean", "downstream_std", "churn", "swap_mean")


def score_tables(tables: np.ndarray, tasks: list[Task]) -> dict[str, dict[str, float]]:
    """Per task: retrained mean and std over seeds, churn and swap of one (K, n, D) representation."""
    out = {}
    for task in tasks:
        feats = np.stack([task.features(t) for t in tables])
        study = seed_study(task.kind, feats[:, task.train], task.y[task.train], feats[:, ~task.train],
                           task.y[~task.train])
        out[task.name] = {k: study[k] for k in STUDY_KEYS}
    return out


def variant_study(
    tables: np.ndarray, ids: list[str], counts: np.ndarray, anchors: int, tasks: list[Task],
    fit_rows: np.ndarray | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """"<variant> / single seed" and "<variant> / seed mean" -> task -> STUDY_KEYS. Bin edges are fitted
    on the entities `fit_rows` selects (the training entities); "m" multiplies the anchor count in use,
    min(anchors, n)."""
    results = {}
    base = min(anchors, len(ids))
    for name, v in VARIANTS.items():
        m = max(2, min(len(ids), round(base * v.get("m", 1.0))))
        featurizer = FPRFeaturizer.fit(ids, counts, m, v.get("kernel", "cosine"), tables=tables,
                                       anchor_rule=v.get("anchor_rule", "frequency"),
                                       seed_spread=v.get("seed_spread", False), quantile_bins=v.get("quantile_bins", 0),
                                       fit_rows=fit_rows)
        if not (v.get("seed_spread") or v.get("quantile_bins")):
            results[f"{name} / single seed"] = score_tables(featurizer.transform_seeds(tables, ids), tasks)
        results[f"{name} / seed mean"] = score_tables(leave_one_out(tables, lambda t: featurizer.transform(t, ids)), tasks)
    return results
