"""evaluate-predictability stage: stability across seeds and predictability per task, per
representation, before any downstream model is trained.

Predictability scores use the training split only (what a team has before it trains): LogME and
centred kernel-target alignment, each the mean over pretraining seeds.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from reprflow.components.common.artifacts import write_json
from reprflow.components.common.errors import ConfigError
from reprflow.components.common.provenance import provenance
from reprflow.components.common.tables import read_interactions, read_items
from reprflow.components.common.tasks import Task, build_tasks
from reprflow.components.evaluate_predictability.metrics.kernel_alignment import centered_kernel_alignment
from reprflow.components.evaluate_predictability.metrics.logme import logme
from reprflow.components.evaluate_predictability.metrics.stability import seed_stability
from reprflow.components.featurize.run import load_representations

log = logging.getLogger(__name__)


def task_targets(task: Task) -> np.ndarray:
    """Labels (n,) for classification, a (n, 1) column for regression: the metrics' convention."""
    y = task.y[task.train]
    return y.astype(np.float64)[:, None] if task.kind == "regression" else y


def predictability(task: Task, tables: np.ndarray) -> dict[str, float]:
    """Mean over seeds of LogME and kernel alignment on the task's training rows."""
    y = task_targets(task)
    scores = {"logme": [], "kernel_alignment": []}
    for table in tables:
        x = task.features(table)[task.train].astype(np.float64)
        scores["logme"].append(logme(x, y).score)
        scores["kernel_alignment"].append(centered_kernel_alignment(x, y))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def run_evaluate(
    representations_dir: str, interactions_path: str, items_path: str, config: dict[str, Any], out_path: str
) -> dict[str, Any]:
    started = time.perf_counter()
    reps, _, rep_meta = load_representations(representations_dir)
    k = config["evaluate"]["knn_k"]
    items = len(next(iter(reps.values()))[0])
    if k >= items:
        raise ConfigError(f"field evaluate.knn_k: {k} neighbours need more than {k} items; the embedding has {items}")
    tasks = build_tasks(read_interactions(interactions_path), read_items(items_path), config)
    stability = {}
    for name, tables in reps.items():
        stability[name] = seed_stability(list(tables), k=k)
        log.info("stability %s: %s", name, stability[name])
    scores = {t.name: {name: predictability(t, tables) for name, tables in reps.items()} for t in tasks}
    out = {
        "stability": stability,
        "tasks": scores,
        "meta": provenance(config, seeds=rep_meta["seeds"], inputs={"representations": representations_dir},
                           duration_s=time.perf_counter() - started),
    }
    write_json(out_path, out)
    return out
