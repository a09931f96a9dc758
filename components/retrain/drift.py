"""Drift between production and a retrained candidate, before anything is served.

For the entities both versions know, and for each served representation (raw: the first seed's
table; fpr_seedmean: the seed-mean FPR features, the candidate featurized against production's
anchors):

- how far each entity moved: relative change ||c_i - p_i|| / ||p_i|| (median, mean, 90th percentile,
  a histogram), and how much its neighbourhood changed: k-NN overlap@k between the two tables;
- what the production downstream model does when the candidate's features are fed to it without
  retraining (what happens in production the day the embeddings are refreshed): its test metric
  on production's features and on the candidate's, and the churn of its predictions;
- on the same test rows, the candidate's own model on its own features: the like-for-like
  comparison of the two versions that the gate uses.

Raw embeddings of two trainings differ by an arbitrary rotation, so their relative change is
large even when nothing about the items changed; features built from inner products with fixed
anchors do not carry that rotation. The numbers say how much of that holds on real data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reprflow.components.common.errors import DataError
from reprflow.components.common.tasks import build_tasks
from reprflow.components.downstream_train.models import churn, score
from reprflow.components.evaluate_predictability.metrics.stability import knn_overlap
from reprflow.components.package.bundle import SERVED, Bundle

HISTOGRAM_EDGES = np.linspace(0.0, 2.0, 41)  # relative change; the last bin takes everything above


def entity_drift(production: np.ndarray, candidate: np.ndarray, k: int = 10) -> dict[str, Any]:
    """How far rows moved between two tables of the same entities (rows aligned), (n, D) each."""
    p, c = np.asarray(production, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    norm = np.linalg.norm(p, axis=1)
    known = norm > 0
    if known.sum() < 2:
        raise DataError(f"production and candidate share {int(known.sum())} entities with non-zero production "
                        "features; drift needs at least 2 (were they trained on the same catalogue?)")
    rel = np.linalg.norm(c - p, axis=1)[known] / norm[known]
    counts, _ = np.histogram(np.minimum(rel, HISTOGRAM_EDGES[-1]), HISTOGRAM_EDGES)
    return {
        "relative_change_median": float(np.median(rel)),
        "relative_change_mean": float(rel.mean()),
        "relative_change_p90": float(np.quantile(rel, 0.9)),
        f"knn_overlap_at_{k}": knn_overlap(p, c, k=min(k, len(p) - 1)),
        "histogram": {"edges": HISTOGRAM_EDGES.tolist(), "counts": counts.tolist()},
    }


def common_entities(production: Bundle, candidate: Bundle, items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The candidate's items table cut to the entities production knows too, and the rows of those
    entities in production's and in the candidate's tables."""
    p_pos = {e: i for i, e in enumerate(production.ids)}
    c_pos = {e: i for i, e in enumerate(candidate.ids)}
    keep = items["item"].astype(str).isin(p_pos.keys()).to_numpy()
    common = items[keep].reset_index(drop=True)
    ids = common["item"].astype(str)
    return common, ids.map(p_pos).to_numpy(), ids.map(c_pos).to_numpy()


def production_swap(
    production: Bundle, candidate: Bundle, interactions: pd.DataFrame,
    common: tuple[pd.DataFrame, np.ndarray, np.ndarray], config: dict[str, Any],
) -> dict[str, dict[str, dict[str, float]]]:
    """Per task and served representation, on the test rows of the entities both versions know
    (`common`, from common_entities): production's model on production's features and on the
    candidate's, and the candidate's model on the candidate's features. Classes are compared by name."""
    common_items, p_rows, c_rows = common
    out: dict[str, dict[str, dict[str, float]]] = {}
    for task in build_tasks(interactions, common_items, config):
        if task.name not in production.meta["models"] or task.name not in candidate.meta["models"]:
            continue  # the gate refuses a task that one version lacks
        truth = np.asarray(task.labels, dtype=object)[task.y] if task.labels else task.y
        test = ~task.train
        for rep in SERVED:
            model = production.model(task.name, rep)
            theirs = task.features(candidate.features[rep][c_rows])[test]
            before = model.predict(task.features(production.features[rep][p_rows])[test])
            after = model.predict(theirs)
            out.setdefault(task.name, {})[rep] = {
                "metric_production": score(task.kind, truth[test], before),
                "metric_candidate_features": score(task.kind, truth[test], after),
                "churn": churn(task.kind, before, after, truth[test]),
                "metric_candidate": score(task.kind, truth[test], candidate.model(task.name, rep).predict(theirs)),
                "n_test": int(test.sum()),
            }
    return out


def compute_drift(
    production: Bundle, candidate: Bundle, interactions: pd.DataFrame, items: pd.DataFrame, config: dict[str, Any]
) -> dict[str, Any]:
    """Entity drift of every served representation and the production model's swap, as one record."""
    common = common_entities(production, candidate, items)
    _, p_rows, c_rows = common
    k = config["evaluate"]["knn_k"]
    return {
        "entities": {"production": len(production.ids), "candidate": len(candidate.ids), "common": len(p_rows)},
        "representations": {rep: entity_drift(production.features[rep][p_rows], candidate.features[rep][c_rows], k)
                            for rep in SERVED},
        "production_model": production_swap(production, candidate, interactions, common, config),
    }
