"""downstream-train stage: every task, every representation, one model per pretraining seed."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from reprflow.components.common.artifacts import write_json
from reprflow.components.common.provenance import provenance
from reprflow.components.common.tables import read_interactions, read_items
from reprflow.components.common.tasks import build_tasks, training_items
from reprflow.components.downstream_train.models import ensemble_study, seed_study
from reprflow.components.downstream_train.next_item import homogeneity_study, next_item_task
from reprflow.components.featurize.run import load_representations
from reprflow.components.featurize.variants import variant_study

log = logging.getLogger(__name__)
HOMOGENEITY_REPRESENTATIONS = ("raw", "fpr")  # two-tower training per seed is the costly part


def run_downstream(
    representations_dir: str, interactions_path: str, items_path: str, config: dict[str, Any], results_path: str
) -> dict[str, Any]:
    started = time.perf_counter()
    reps, ids, rep_meta = load_representations(representations_dir)
    interactions, items = read_interactions(interactions_path), read_items(items_path)
    tasks = build_tasks(interactions, items, config)
    results: dict[str, Any] = {}
    # (representation name, arrays it is built from, study): the ensemble is models on raw.
    strategies = [(name, name, seed_study) for name in reps] + [("ensemble", "raw", ensemble_study)]
    jobs = [(t, s) for t in tasks for s in strategies]
    for task, (name, source, study_fn) in tqdm(jobs, desc="downstream", unit="model set"):
        feats = np.stack([task.features(table) for table in reps[source]])
        study = study_fn(task.kind, feats[:, task.train], task.y[task.train], feats[:, ~task.train], task.y[~task.train])
        entry = results.setdefault(task.name, {"metric": task.metric, "n_train": int(task.train.sum()),
                                               "n_test": int((~task.train).sum()), "representations": {}})
        entry["representations"][name] = study
        log.info("%s / %s: %s %.4f +- %.4f, churn %.3f, swap %.4f", task.name, name, task.metric,
                 study["downstream_mean"], study["downstream_std"], study["churn"], study["swap_mean"])
    d = config["downstream"]
    next_item = next_item_task(interactions, items, d["test_fraction"], d["split_seed"])
    homogeneity = {}
    for name in HOMOGENEITY_REPRESENTATIONS:
        homogeneity[name] = homogeneity_study(next_item, reps[name])
        log.info("next item / %s: %s", name, homogeneity[name])
    featurizers = None
    if config["featurize"]["compare_variants"]:
        featurizers = variant_study(reps["raw"], ids, items["baskets"].to_numpy(), config["featurize"]["anchors"], tasks,
                                    training_items(items, config))
        log.info("featurizer family: %d variants scored", len(featurizers))
    out = {
        "tasks": results,
        "homogeneity": homogeneity,
        "featurizers": featurizers,
        "meta": provenance(config, seeds=rep_meta["seeds"], inputs={"representations": representations_dir},
                           duration_s=time.perf_counter() - started),
    }
    write_json(results_path, out)
    return out
