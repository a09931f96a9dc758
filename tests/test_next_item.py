"""Next-item decoders: ranking metrics in closed form, learning, determinism, the task's split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprflow.components.downstream_train.next_item import (
    hit_metrics,
    homogeneity_study,
    next_item_task,
    rank_items,
    top_list_churn,
    train_two_tower,
)
from reprflow.components.evaluate_predictability.metrics.sequential_proxy import SequentialQueries


def queries(histories: list[list[int]], targets: list[list[int]]) -> SequentialQueries:
    ptr = lambda xs: np.r_[0, np.cumsum([len(x) for x in xs])]  # noqa: E731
    return SequentialQueries(ptr(histories), np.concatenate(histories), ptr(targets), np.concatenate(targets))


def test_hit_metrics_closed_forms() -> None:
    top = np.tile(np.arange(10, 20), (2, 1))
    q = queries([[0], [1]], [[12], [99, 11]])  # hit at rank 3; hit at rank 2 with two relevant targets
    m = hit_metrics(top, q)
    assert m["hr_at_10"] == 1.0
    expected = (1 / np.log2(4) + (1 / np.log2(3)) / (1 + 1 / np.log2(3))) / 2
    assert m["ndcg_at_10"] == pytest.approx(expected)
    assert top_list_churn(top, top) == 0 and top_list_churn(top, top + 10) == 1


def synthetic(n_items: int = 60, d: int = 8, n_queries: int = 300, seed: int = 0):
    """Items in 6 clusters; a customer buys within one cluster, before and after."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, d)) * 3
    cluster = np.arange(n_items) % 6
    x = centres[cluster] + rng.normal(size=(n_items, d)) * 0.3
    hist, targ = [], []
    for _ in range(n_queries):
        members = np.flatnonzero(cluster == rng.integers(6))
        chosen = rng.choice(members, size=5, replace=False)
        hist.append(sorted(chosen[:3].tolist()))
        targ.append(sorted(chosen[3:].tolist()))
    return x.astype(np.float32), queries(hist[:200], targ[:200]), queries(hist[200:], targ[200:])


@pytest.mark.parametrize("fusion", ["dot", "mlp"])
def test_decoders_learn_and_are_deterministic(fusion: str) -> None:
    x, train, test = synthetic()
    model = train_two_tower(x, train, fusion, epochs=20, negatives=10, batch=64, seed=1)
    top = rank_items(model, x, test)
    assert hit_metrics(top, test)["hr_at_10"] > 0.9  # chance is about 10 / 57
    again = rank_items(train_two_tower(x, train, fusion, epochs=20, negatives=10, batch=64, seed=1), x, test)
    assert np.array_equal(top, again)
    for row, qi in zip(top, range(test.n_queries)):  # history items are never recommended
        assert not set(row) & set(test.history_items[test.history_ptr[qi] : test.history_ptr[qi + 1]])


def test_homogeneity_study_summarises_distinct_seeds_as_documented() -> None:
    """Mean, std (ddof 1) and pairwise top-10 churn over three different tables, recomputed per seed."""
    from reprflow.components.evaluate_predictability.metrics.sequential_proxy import top_k_items

    x, train, test = synthetic()
    rng = np.random.default_rng(5)
    tables = np.stack([x + s * rng.normal(size=x.shape) for s in (0.5, 1.0, 2.0)])
    task = type("T", (), {"train": train, "test": test})()
    proxy = homogeneity_study(task, tables)["proxy"]
    tops = [top_k_items(t, test, 10) for t in tables]
    per_seed = [hit_metrics(t, test) for t in tops]
    for key in ("hr_at_10", "ndcg_at_10"):
        values = np.array([m[key] for m in per_seed])
        assert values.std() > 0
        assert proxy[f"{key}_mean"] == pytest.approx(values.mean())
        assert proxy[f"{key}_std"] == pytest.approx(values.std(ddof=1))
    pairs = [top_list_churn(tops[i], tops[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert proxy["top10_churn"] == pytest.approx(np.mean(pairs)) and 0 < proxy["top10_churn"] <= 1


def test_homogeneity_study_on_identical_seeds_has_no_churn() -> None:
    x, train, test = synthetic()
    task = type("T", (), {"train": train, "test": test})()
    result = homogeneity_study(task, np.stack([x, x]))
    assert set(result) == {"dot", "mlp", "proxy"}
    for v in result.values():
        assert v["top10_churn"] == 0 and v["hr_at_10_std"] == 0
    assert result["proxy"]["hr_at_10_mean"] > 0.5  # untrained, yet far above chance (about 0.17)


def test_next_item_task_uses_last_invoice_and_splits_customers() -> None:
    t = pd.Timestamp("2011-01-01")
    items = pd.DataFrame({"item": ["A", "B", "C"], "description": "", "baskets": 5, "median_price": 1.0})
    rows = []
    for c in range(40):
        rows += [(f"i{c}a", "A", f"c{c}", t), (f"i{c}a", "B", f"c{c}", t), (f"i{c}b", "C", f"c{c}", t + pd.Timedelta(days=1))]
    rows.append(("single", "A", "lonely", t))
    inter = pd.DataFrame(rows, columns=["invoice", "item", "customer", "timestamp"]).astype({"customer": "string"})
    task = next_item_task(inter, items, 0.3, 0)
    assert task.train.n_queries + task.test.n_queries == 40  # 'lonely' has one invoice
    assert 0 < task.test.n_queries < 40
    assert set(task.train.targets.tolist()) == {2} and set(task.train.history_items.tolist()) == {0, 1}


def test_a_split_without_queries_or_scorable_targets_is_a_named_error() -> None:
    from reprflow.components.common.errors import DataError

    t = pd.Timestamp("2011-01-01")
    items = pd.DataFrame({"item": ["A", "B"], "description": "", "baskets": 5, "median_price": 1.0})
    rows = [("i1", "A", "c1", t), ("i2", "B", "c1", t + pd.Timedelta(days=1))]  # one customer: one split is empty
    inter = pd.DataFrame(rows, columns=["invoice", "item", "customer", "timestamp"]).astype({"customer": "string"})
    with pytest.raises(DataError, match=r"^task next_item: the (training|test) split has no query .*1 such customers"):
        next_item_task(inter, items, 0.3, 0)
    # every target already in the history: nothing to score, instead of a NaN in summary.json
    with pytest.raises(DataError, match="none of the 2 queries has a target outside its history"):
        hit_metrics(np.tile(np.arange(10), (2, 1)), queries([[0], [1]], [[0], [1]]))
