"""Downstream task definitions on small hand-made tables: labels, splits and customer features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprflow.components.common.errors import DataError
from reprflow.components.common.tasks import build_tasks, check_task, log_price, product_type, repeat_purchase, in_test_split

ITEMS = pd.DataFrame({
    "item": ["A", "B", "C", "D", "E"],
    "description": ["RED MUG", "WHITE HANGING HEART MUG", "SMALL BAG", "LARGE RED SPOT BAG", "ODD THING"],
    "baskets": [5, 5, 5, 5, 5],
    "median_price": [1.0, 2.0, np.e, 4.0, 5.0],
})


def test_product_type_is_last_word_of_the_most_frequent_classes() -> None:
    task = product_type(ITEMS, n_classes=2, fraction=0.3, seed=0)
    assert task.rows.tolist() == [0, 1, 2, 3]  # THING has one item: not in the top two
    assert task.y.tolist() == [1, 1, 0, 0]  # classes sorted: BAG = 0, MUG = 1


def test_log_price_target() -> None:
    task = log_price(ITEMS, 0.3, 0)
    np.testing.assert_allclose(task.y, np.log(ITEMS["median_price"]))
    assert task.metric == "r2"


def test_split_is_stable_and_close_to_the_fraction() -> None:
    ids = pd.Series([f"c{i}" for i in range(20000)])
    a, b = in_test_split(ids, 0.3, 7), in_test_split(ids[::-1].reset_index(drop=True), 0.3, 7)[::-1]
    assert np.array_equal(a, b)  # membership depends on the id only, not on the order
    assert abs(a.mean() - 0.3) < 0.01
    assert not np.array_equal(a, in_test_split(ids, 0.3, 8))


def test_repeat_purchase_labels_and_mean_of_history_features() -> None:
    t = pd.Timestamp("2011-01-01")
    inter = pd.DataFrame({
        "invoice": ["1", "1", "2", "3", "4", "5"],
        "item": ["A", "B", "C", "A", "D", "Z"],
        "customer": pd.array(["x", "x", "y", "y", pd.NA, "z"], dtype="string"),
        "timestamp": [t, t, t, t + pd.DateOffset(months=10), t, t + pd.DateOffset(months=12)],
    })
    task = repeat_purchase(inter, ITEMS, 0.5, 0)
    # x: bought A, B early and never again -> 0; y: C early, A later -> 1; z: only later -> not a row.
    assert task.y.tolist() == [0, 1]
    table = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_allclose(task.features(table), [table[[0, 1]].mean(0), table[2]])
    # x comes back for an item outside the vocabulary (Z): a repeat purchase all the same
    later = pd.DataFrame({"invoice": ["6"], "item": ["Z"], "customer": pd.array(["x"], dtype="string"),
                          "timestamp": [t + pd.DateOffset(months=11)]})
    assert repeat_purchase(pd.concat([inter, later], ignore_index=True), ITEMS, 0.5, 0).y.tolist() == [1, 1]


def test_build_tasks_names_and_metrics() -> None:
    n = 60
    items = pd.DataFrame({"item": [f"I{i:02d}" for i in range(n)],
                          "description": [f"THING {'MUG' if i % 2 else 'BAG'}" for i in range(n)],
                          "baskets": 5, "median_price": np.linspace(1, 5, n)})
    t = pd.Timestamp("2011-01-01")
    rows = [(f"a{c}", f"I{c:02d}", f"c{c}", t) for c in range(n)]
    rows += [(f"b{c}", f"I{(c + 1) % n:02d}", f"c{c}", t + pd.DateOffset(months=12)) for c in range(0, n, 2)]
    inter = pd.DataFrame(rows, columns=["invoice", "item", "customer", "timestamp"]).astype({"customer": "string"})
    config = {"downstream": {"test_fraction": 0.3, "split_seed": 0, "product_type_classes": 2, "product_type_labels": []}}
    tasks = build_tasks(inter, items, config)
    assert [(t.name, t.metric) for t in tasks] == [("product_type", "accuracy"), ("log_price", "r2"), ("repeat_purchase", "auc")]
    assert tasks[2].y.tolist() == [1 - c % 2 for c in sorted(range(n), key=lambda c: f"c{c}")]


def test_single_class_split_is_a_clear_error() -> None:
    task = product_type(ITEMS.iloc[:2], n_classes=1, fraction=0.3, seed=0)
    with pytest.raises(DataError, match="task product_type: the (training|test) split"):
        check_task(task)


def test_pinned_labels_define_the_classes_whatever_the_counts() -> None:
    """A retrain measures product type on production's classes, even where its data rank other words first."""
    words = ["MUG"] * 10 + ["BAG"] * 6 + ["BOX"] * 4 + ["CUP"] * 3
    items = pd.DataFrame({"item": [f"I{i:02d}" for i in range(len(words))], "description": [f"A {w}" for w in words]})
    derived = product_type(items, 2, 0.3, 0)
    assert derived.labels == ("BAG", "MUG")
    pinned = product_type(items, 2, 0.3, 0, labels=["CUP", "BOX"])
    assert pinned.labels == ("BOX", "CUP") and len(pinned.rows) == 7
    assert [pinned.labels[y] for y in pinned.y] == [words[r] for r in pinned.rows]
    assert product_type(items, 2, 0.3, 0, labels=["cup", "Box"]).labels == ("BOX", "CUP")  # any case
    with pytest.raises(DataError, match=r"^field downstream.product_type_labels: 'PLATE', 'bowl' are not the last "
                                        r"word of any item's description \(the most frequent are MUG, BAG, BOX, CUP\)$"):
        product_type(items, 2, 0.3, 0, labels=["CUP", "PLATE", "bowl"])
