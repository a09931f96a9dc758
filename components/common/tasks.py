"""The downstream tasks of DESIGN.md on the Online Retail tables.

- product_type (items, multiclass, accuracy): the last word of the description, the
  `product_type_classes` most frequent words only.
- log_price (items, regression, R^2): log of the item's median unit price.
- repeat_purchase (customers, binary, ROC AUC): from the items a customer bought in the first
  three quarters of the data's time span (nine months of the full year), whether they buy again
  in the last quarter. A customer's features are the mean of
  the representations of those items.

Train/test membership is a hash of (split_seed, entity id): stable across runs, seeds, retrains
and representations, so every comparison is on the same test entities.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reprflow.components.common.errors import DataError
from reprflow.components.common.tables import vocabulary_rows

METRICS = {"multiclass": "accuracy", "regression": "r2", "binary": "auc"}
HISTORY_FRACTION = 0.75


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # multiclass | regression | binary
    y: np.ndarray  # (rows,) labels or targets
    train: np.ndarray  # (rows,) bool: in the training split
    rows: np.ndarray | None = None  # item tasks: entity index of each row
    aggregation: sp.csr_matrix | None = None  # customer tasks: (rows, n_items) mean over items
    labels: tuple[str, ...] = ()  # multiclass: the class names, y indexing them

    @property
    def metric(self) -> str:
        return METRICS[self.kind]

    def features(self, table: np.ndarray) -> np.ndarray:
        """Task rows' features from an entity table (n_items, D)."""
        if self.rows is not None:
            return table[self.rows]
        return np.asarray(self.aggregation @ table, dtype=np.float32)


def in_test_split(ids: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """True for entities in the test split: crc32 of 'seed:id' below fraction of 2^32."""
    h = np.array([zlib.crc32(f"{seed}:{e}".encode()) for e in ids.astype(str)], dtype=np.uint64)
    return h < np.uint64(int(fraction * 2**32))


def training_items(items: pd.DataFrame, config: dict[str, Any]) -> np.ndarray:
    """(n,) mask of the items outside every item task's test split (the entities a featurizer may fit on)."""
    d = config["downstream"]
    return ~in_test_split(items["item"], d["test_fraction"], d["split_seed"])


def product_type(
    items: pd.DataFrame, n_classes: int, fraction: float, seed: int, labels: list[str] | None = None
) -> Task:
    """The last word of the description; classes `labels` (any case), or the n_classes most frequent words."""
    word = items["description"].astype(str).str.strip().str.split().str[-1].fillna("").str.upper()
    counts = word[word != ""].value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    if labels:
        top = pd.Index([label.upper() for label in labels])
        absent = [label for label in labels if label.upper() not in counts.index]
        if absent:
            raise DataError(f"field downstream.product_type_labels: {', '.join(map(repr, absent))} "
                            f"{'is' if len(absent) == 1 else 'are'} not the last word of any item's description "
                            f"(the most frequent are {', '.join(counts.index[:8])})")
    else:
        top = counts.index[:n_classes]
    keep = word.isin(top).to_numpy()
    names = np.sort(top.to_numpy())
    labels = np.searchsorted(names, word[keep].to_numpy())
    rows = np.flatnonzero(keep)
    return Task("product_type", "multiclass", labels, ~in_test_split(items["item"][keep], fraction, seed), rows=rows,
                labels=tuple(str(n) for n in names))


def log_price(items: pd.DataFrame, fraction: float, seed: int) -> Task:
    y = np.log(items["median_price"].to_numpy(dtype=np.float64))
    rows = np.arange(len(items))
    return Task("log_price", "regression", y, ~in_test_split(items["item"], fraction, seed), rows=rows)


def repeat_purchase(interactions: pd.DataFrame, items: pd.DataFrame, fraction: float, seed: int) -> Task:
    known = interactions.dropna(subset=["customer"])
    rows, item_index = vocabulary_rows(known, items)
    start, end = interactions["timestamp"].min(), interactions["timestamp"].max()
    cutoff = start + (end - start) * HISTORY_FRACTION
    before = (rows["timestamp"] < cutoff).to_numpy()
    history = pd.DataFrame({"customer": rows["customer"].astype(str).to_numpy()[before], "item": item_index[before]})
    history = history.drop_duplicates()
    customers = np.sort(history["customer"].unique())
    # any purchase after the cutoff counts, also of an item outside the embedding's vocabulary
    later = set(known.loc[known["timestamp"] >= cutoff, "customer"].astype(str))
    y = np.array([c in later for c in customers], dtype=np.int64)
    r = np.searchsorted(customers, history["customer"].to_numpy())
    counts = np.bincount(r, minlength=len(customers))
    agg = sp.csr_matrix((1.0 / counts[r], (r, history["item"].to_numpy())), shape=(len(customers), len(items)))
    test = in_test_split(pd.Series(customers), fraction, seed)
    return Task("repeat_purchase", "binary", y, ~test, aggregation=agg)


def build_tasks(interactions: pd.DataFrame, items: pd.DataFrame, config: dict[str, Any]) -> list[Task]:
    d = config["downstream"]
    f, s = d["test_fraction"], d["split_seed"]
    tasks = [
        product_type(items, d["product_type_classes"], f, s, d["product_type_labels"]),
        log_price(items, f, s),
        repeat_purchase(interactions, items, f, s),
    ]
    for task in tasks:
        check_task(task)
    return tasks


def check_task(task: Task) -> None:
    """A task must be learnable and testable: enough rows, and two classes in each split."""
    for split, mask in (("training", task.train), ("test", ~task.train)):
        if mask.sum() < 2:
            raise DataError(f"task {task.name}: only {int(mask.sum())} entities in the {split} split")
        if task.kind != "regression" and len(np.unique(task.y[mask])) < 2:
            raise DataError(
                f"task {task.name}: the {split} split has a single class ({task.y[mask][0]}); "
                "the data may cover too short a period or too few entities"
            )


def task_definition(task: Task, config: dict[str, Any]) -> dict[str, Any]:
    """Everything that defines a task's rows, labels and split: two versions can be compared on a
    task only if these are equal."""
    d = config["downstream"]
    out: dict[str, Any] = {"kind": task.kind, "metric": task.metric, "test_fraction": d["test_fraction"],
                           "split_seed": d["split_seed"]}
    if task.name == "product_type":
        out["labels"] = list(task.labels)
    if task.name == "repeat_purchase":
        out["history_fraction"] = HISTORY_FRACTION
    return out
