"""Model selection: score every candidate embedding with every predictability metric, train the
downstream models on each, and measure how well each metric would have picked.

Candidates: a grid of item2vec hyperparameters (pretrained in the pipeline's fan-out) plus a
random-embedding control (Gaussian, the grid's largest dimension), which every metric should
rank last. One pretraining seed per candidate: selection among seeds is a different question.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from reprflow.components.common.artifacts import load_npy, read_json, write_json
from reprflow.components.common.provenance import provenance
from reprflow.components.common.tables import read_interactions, read_items
from reprflow.components.common.tasks import Task, build_tasks
from reprflow.components.downstream_train.models import make_model, predict, score
from reprflow.components.evaluate_predictability.metrics.hscore import hscore, regularized_hscore
from reprflow.components.evaluate_predictability.metrics.kernel_alignment import centered_kernel_alignment
from reprflow.components.evaluate_predictability.metrics.kernel_ridge_gcv import kernel_ridge_gcv
from reprflow.components.evaluate_predictability.metrics.logme import logme
from reprflow.components.evaluate_predictability.metrics.transrate import transrate
from reprflow.components.model_selection.rank_agreement import rank_agreement

log = logging.getLogger(__name__)
RANDOM = "random"


def candidate_grid(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidates of `config["selection"]`: every dim x window x negatives, named."""
    sel = config["selection"]
    return [
        {"name": f"d{d}-w{w}-n{k}", "dim": d, "window": w, "negatives": k}
        for d, w, k in itertools.product(sel["dims"], sel["windows"], sel["negatives"])
    ]


def _targets(task: Task) -> np.ndarray:
    y = task.y[task.train]
    return y.astype(np.float64)[:, None] if task.kind == "regression" else y


def _classification_only(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[Task, np.ndarray], float | None]:
    return lambda task, x: fn(x, task.y[task.train]) if task.kind != "regression" else None


# metric name -> score(task, training features); higher = more predictive. None: not defined.
METRICS: dict[str, Callable[[Task, np.ndarray], float | None]] = {
    "logme": lambda task, x: logme(x, _targets(task)).score,
    "kernel_alignment": lambda task, x: centered_kernel_alignment(x, _targets(task)),
    "ridge_gcv": lambda task, x: kernel_ridge_gcv(x, _targets(task)).score,
    "hscore": _classification_only(hscore),
    "regularized_hscore": _classification_only(regularized_hscore),
    "transrate": _classification_only(transrate),
}


def score_candidate(task: Task, table: np.ndarray) -> dict[str, float | None]:
    """Every metric on the training split, then the downstream model's test metric."""
    features = task.features(table)
    # The metrics get the features in their own dtype: each computes in float64 but takes its rank
    # tolerance from the input's precision (H-score would count a float32 table's rounding as signal).
    out = {name: fn(task, features[task.train]) for name, fn in METRICS.items()}
    x = features.astype(np.float64)
    model = make_model(task.kind).fit(x[task.train], task.y[task.train])
    out["downstream"] = score(task.kind, task.y[~task.train], predict(model, task.kind, x[~task.train]))
    return out


def agreement(candidates: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Per metric: rank agreement of its scores with the downstream metric over the candidates."""
    names = list(candidates)
    downstream = np.array([candidates[c]["downstream"] for c in names], dtype=float)
    result = {}
    for metric in METRICS:
        values = [candidates[c][metric] for c in names]
        if any(v is None for v in values):
            continue
        result[metric] = rank_agreement(np.array(values, dtype=float), downstream)
    return result


def run_score_candidates(
    embedding_dirs: Sequence[str], interactions_path: str, items_path: str, config: dict[str, Any], out_path: str
) -> dict[str, Any]:
    started = time.perf_counter()
    tables: dict[str, np.ndarray] = {}
    hyper: dict[str, Any] = {}
    for d in embedding_dirs:
        meta = read_json(Path(d) / "meta.json")
        tables[meta["candidate"]] = load_npy(Path(d) / "embeddings.npy")
        hyper[meta["candidate"]] = meta["pretrain"]
    tables = dict(sorted(tables.items()))
    n = next(iter(tables.values())).shape[0]
    dim = max(t.shape[1] for t in tables.values())
    rng = np.random.default_rng(config["selection"]["seed"])
    tables[RANDOM] = rng.normal(size=(n, dim)).astype(np.float32)
    hyper[RANDOM] = {"dim": dim, "random": True}

    tasks = build_tasks(read_interactions(interactions_path), read_items(items_path), config)
    results: dict[str, Any] = {}
    for task in tasks:
        per_candidate = {name: score_candidate(task, table) for name, table in tqdm(tables.items(), desc=f"select {task.name}")}
        results[task.name] = {
            "metric": task.metric,
            "candidates": per_candidate,
            "leaderboard": sorted(per_candidate, key=lambda c: -per_candidate[c]["downstream"]),
            "agreement": agreement(per_candidate),
        }
        log.info("%s: best %s, agreement %s", task.name, results[task.name]["leaderboard"][0], results[task.name]["agreement"])
    out = {
        "tasks": results,
        "hyperparameters": hyper,
        "meta": provenance(config, inputs=list(embedding_dirs), duration_s=time.perf_counter() - started),
    }
    write_json(out_path, out)
    return out
