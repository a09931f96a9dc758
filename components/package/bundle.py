"""A bundle: what a published version holds, what a team serves and what a retrain is measured against.

    bundle/
      bundle.json                  schema reprflow.bundle/1: name, served representation, entities,
                                   per task its definition and offline metrics, provenance, config
      embeddings/embeddings.npy    (K, n, d) float32 (np.load with allow_pickle=False), ids.json
      featurizer/featurizer.json   the fitted FPR featurizer (anchors by id, kernel, bins)
      models/<task>/<rep>.json     the production downstream model of each task on each served
                                   representation (LinearModel: numbers, no pickle)

Served representations: `fpr_seedmean`, the featurizer over all K seeds, F = mean_k k(E_k, E_k[A])
(n x m), and `raw`, the first seed's embedding table (n x d), kept to show what serving raw
embeddings would do. A model is trained on the training split of each task, as the offline
study's models are; the offline metrics of those studies (retrained mean and spread over seeds,
churn, swap) travel with the bundle so that a later version can be compared without retraining.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprflow.components.common.artifacts import atomic_dir, load_npy, read_json, stays_inside, write_json
from reprflow.components.common.config import SERVED
from reprflow.components.common.errors import DataError
from reprflow.components.common.provenance import provenance
from reprflow.components.common.tasks import Task, build_tasks, task_definition
from reprflow.components.downstream_train.models import make_model
from reprflow.components.featurize.fpr import FPRFeaturizer
from reprflow.components.package.linear_model import LinearModel

SCHEMA = "reprflow.bundle/1"
OFFLINE_KEYS = ("downstream_mean", "downstream_std", "per_seed", "churn", "swap_mean")


def ids_digest(ids: list[str]) -> str:
    """sha256 of the entity ids in order: equal digests, equal entity universes and order."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def served_features(tables: np.ndarray, ids: list[str], featurizer: FPRFeaturizer) -> dict[str, np.ndarray]:
    """The served representations of a (K, n, d) embedding set: name -> (n, D)."""
    return {"fpr_seedmean": featurizer.transform(tables, ids), "raw": np.asarray(tables[0], dtype=np.float32)}


def production_models(tasks: list[Task], features: dict[str, np.ndarray]) -> dict[str, dict[str, LinearModel]]:
    """One model per task and served representation, fitted on the task's training rows."""
    out: dict[str, dict[str, LinearModel]] = {}
    for task in tasks:
        for rep, table in features.items():
            x = task.features(table)
            pipeline = make_model(task.kind).fit(x[task.train], task.y[task.train])
            out.setdefault(task.name, {})[rep] = LinearModel.from_pipeline(pipeline, task.kind, task.labels)
    return out


def build_bundle(
    embedding_set_dir: str,
    featurizer_dir: str,
    results_path: str,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_stats: dict[str, Any],
    config: dict[str, Any],
    out_dir: str,
) -> dict[str, Any]:
    """Write a bundle from a run's artifacts; returns bundle.json's content."""
    root = Path(embedding_set_dir)
    tables, ids = load_npy(root / "embeddings.npy"), read_json(root / "ids.json")
    featurizer = FPRFeaturizer.load(Path(featurizer_dir) / "featurizer.json")
    results = read_json(results_path)
    tasks = build_tasks(interactions, items, config)
    models = production_models(tasks, served_features(tables, ids, featurizer))
    meta = {
        "schema": SCHEMA,
        "name": config["retrain"]["name"],
        "served_representation": config["retrain"]["representation"],
        "entities": {"count": len(ids), "ids_sha256": ids_digest(ids)},
        "tasks": {
            t.name: {"kind": t.kind, "metric": t.metric, "definition": task_definition(t, config),
                     "offline": {rep: {k: results["tasks"][t.name]["representations"][rep][k] for k in OFFLINE_KEYS}
                                 for rep in SERVED}}
            for t in tasks
        },
        "provenance": provenance(config, seeds=read_json(root / "meta.json")["seeds"],
                                 inputs=[{"uri": i["uri"], "generation": int(i["generation"]) if "generation" in i
                                          else None} for i in dataset_stats.get("inputs", [])],
                                 created_at=datetime.now(timezone.utc).isoformat(timespec="seconds")),
        "featurizer": "featurizer/featurizer.json",
        "models": {task: {rep: f"models/{task}/{rep}.json" for rep in reps} for task, reps in models.items()},
        "config": config,
    }
    with atomic_dir(out_dir) as out:
        (out / "embeddings").mkdir()
        shutil.copyfile(root / "embeddings.npy", out / "embeddings" / "embeddings.npy")
        write_json(out / "embeddings" / "ids.json", ids)
        (out / "featurizer").mkdir()
        write_json(out / "featurizer" / "featurizer.json", featurizer.to_dict())
        for task, reps in models.items():
            (out / "models" / task).mkdir(parents=True)
            for rep, model in reps.items():
                model.save(out / meta["models"][task][rep])
        write_json(out / "bundle.json", meta)
    return meta


@dataclass(frozen=True)
class Bundle:
    """A bundle on disk, checked on load; arrays and models are read when first asked for."""

    root: Path
    meta: dict[str, Any]

    @classmethod
    def load(cls, root: str | Path) -> Bundle:
        root = Path(root)
        path = root / "bundle.json"
        try:
            meta = read_json(path)
        except FileNotFoundError:
            raise DataError(f"{path}: not a reprflow bundle (no bundle.json)") from None
        if not isinstance(meta, dict):
            raise DataError(f"{path}: must be a JSON object, got {type(meta).__name__}")
        if meta.get("schema") != SCHEMA:
            raise DataError(f"{path}: field 'schema' must be {SCHEMA!r}, got {meta.get('schema')!r}")
        for field in ("name", "served_representation", "entities", "tasks", "provenance", "featurizer", "models"):
            if field not in meta:
                raise DataError(f"{path}: missing field '{field}'")
        shapes = {
            "name": (isinstance(meta["name"], str) and meta["name"] != "", "a non-empty string"),
            "served_representation": (isinstance(meta["served_representation"], str), "a string"),
            "entities": (isinstance(meta["entities"], dict) and isinstance(meta["entities"].get("count"), int)
                         and isinstance(meta["entities"].get("ids_sha256"), str),
                         'an object {"count": int, "ids_sha256": str}'),
            "tasks": (isinstance(meta["tasks"], dict) and all(
                isinstance(t, dict) and isinstance(t.get("definition"), dict) and isinstance(t.get("offline"), dict)
                for t in meta["tasks"].values()), "an object mapping each task to {definition, offline, ...}"),
            "provenance": (isinstance(meta["provenance"], dict), "an object"),
            "models": (isinstance(meta["models"], dict) and all(isinstance(r, dict) for r in meta["models"].values()),
                       "an object mapping each task to {representation: file}"),
        }
        for field, (ok, what) in shapes.items():
            if not ok:
                raise DataError(f"{path}: field '{field}' must be {what}, got {str(meta[field])[:80]}")
        named = [("featurizer", meta["featurizer"]),
                 *((f"models.{t}.{r}", rel) for t, reps in meta["models"].items() for r, rel in reps.items())]
        for field, rel in named:
            if not stays_inside(rel):
                raise DataError(f"{path}: field '{field}' must be a path inside the bundle, got {rel!r}")
        for rel in ("embeddings/embeddings.npy", "embeddings/ids.json", *(rel for _, rel in named)):
            if not (root / rel).is_file():
                raise DataError(f"{path}: names {rel}, which the bundle does not hold")
        return cls(root, meta)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @functools.cached_property
    def ids(self) -> list[str]:
        path, entities = self.root / "embeddings" / "ids.json", self.meta["entities"]
        ids = read_json(path)
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)) or \
                len(ids) != entities.get("count") or ids_digest(ids) != entities.get("ids_sha256"):
            raise DataError(f"{path}: not the {entities.get('count')} entity ids whose digest bundle.json records")
        return ids

    @functools.cached_property
    def tables(self) -> np.ndarray:
        path = self.root / "embeddings" / "embeddings.npy"
        tables = load_npy(path)
        if tables.ndim != 3 or tables.shape[1] != len(self.ids):
            raise DataError(f"{path}: expected (seeds, {len(self.ids)} entities, dim) embeddings, got {tables.shape}")
        return tables

    @functools.cached_property
    def featurizer(self) -> FPRFeaturizer:
        return FPRFeaturizer.load(self.root / self.meta["featurizer"])

    @functools.cached_property
    def features(self) -> dict[str, np.ndarray]:
        return served_features(self.tables, self.ids, self.featurizer)

    def model(self, task: str, rep: str) -> LinearModel:
        return LinearModel.load(self.root / self.meta["models"][task][rep])
