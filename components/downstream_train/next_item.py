"""Next-item recommendation on frozen item representations: encoder/decoder homogeneity.

A customer's query is the mean of the representations of the items in all their invoices but the
last; the targets are the items of the last invoice. Two two-tower decoders are trained on top of
the frozen item features x (n, D), with h = mean of the history's x:

    dot fusion (homogeneous with item2vec's dot-product pretraining):  s(h, i) = (A h) . (B x_i)
    MLP fusion (heterogeneous):  s(h, i) = w' relu(W [h; x_i] + b) + c

Both are trained with the same sampled softmax (each positive against `negatives` uniformly drawn
items) and evaluated by ranking all items for held-out customers: HR@10 and NDCG@10 (history
items excluded, as in the sequential proxy). Per pretraining seed: the metric's spread, and the
churn of the top-10 lists between seeds (1 - overlap of the two lists, averaged over customers).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
import torch

from reprflow.components.common.errors import DataError
from reprflow.components.common.tables import vocabulary_rows
from reprflow.components.common.tasks import in_test_split
from reprflow.components.evaluate_predictability.metrics.sequential_proxy import (
    SequentialQueries,
    mean_history,
    queries_from_baskets,
    top_k_items,
)

K = 10
FUSIONS = ("dot", "mlp")


@dataclass(frozen=True)
class NextItemTask:
    train: SequentialQueries
    test: SequentialQueries


def _subset(q: SequentialQueries, keep: np.ndarray) -> SequentialQueries:
    def take(ptr: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.diff(ptr)[keep]
        rows = np.concatenate([np.arange(ptr[i], ptr[i + 1]) for i in np.flatnonzero(keep)]) if keep.any() else []
        return np.r_[0, np.cumsum(lengths)], values[np.asarray(rows, dtype=np.int64)]

    hp, hi = take(q.history_ptr, q.history_items)
    tp, ti = take(q.targets_ptr, q.targets)
    return SequentialQueries(hp, hi, tp, ti)


def next_item_task(interactions: pd.DataFrame, items: pd.DataFrame, test_fraction: float, split_seed: int) -> NextItemTask:
    """Queries of customers with at least two invoices, split by customer id like the other tasks."""
    rows, item_index = vocabulary_rows(interactions.dropna(subset=["customer"]), items)
    invoice = rows["invoice"].astype(str).to_numpy()
    when = rows.groupby("invoice")["timestamp"].transform("min").to_numpy()  # one time per invoice
    customer = rows["customer"].astype(str).to_numpy()
    queries = queries_from_baskets(customer, when, invoice, item_index)
    per_customer = pd.Series(invoice).groupby(customer).nunique()
    customers = np.sort(per_customer.index[per_customer.to_numpy() >= 2].to_numpy())
    test = in_test_split(pd.Series(customers), test_fraction, split_seed)
    task = NextItemTask(_subset(queries, ~test), _subset(queries, test))
    for name, split in (("training", task.train), ("test", task.test)):
        if split.n_queries == 0:
            raise DataError(f"task next_item: the {name} split has no query (no customer in it has two invoices "
                            f"of embedded items; {len(customers)} such customers in all)")
    return task


class TwoTower(torch.nn.Module):
    def __init__(self, dim: int, fusion: str, hidden: int = 64):
        super().__init__()
        self.fusion = fusion
        if fusion == "dot":
            self.query = torch.nn.Linear(dim, hidden, bias=False)
            self.item = torch.nn.Linear(dim, hidden, bias=False)
        else:
            self.mlp = torch.nn.Sequential(torch.nn.Linear(2 * dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """h: (B, D), x: (B, C, D) candidates -> (B, C) scores."""
        if self.fusion == "dot":
            return torch.einsum("bh,bch->bc", self.query(h), self.item(x))
        pairs = torch.cat([h[:, None].expand(-1, x.shape[1], -1), x], dim=-1)
        return self.mlp(pairs).squeeze(-1)


def train_two_tower(
    features: np.ndarray, queries: SequentialQueries, fusion: str, *, epochs: int = 5, negatives: int = 20,
    batch: int = 512, lr: float = 3e-3, seed: int = 0,
) -> TwoTower:
    """Sampled-softmax training on (query, target) pairs; deterministic for a given seed."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(features.astype(np.float32))
    x = x / x.norm(dim=1).mean().clamp_min(1e-12)  # one global scale: keeps the geometry, tames magnitudes
    h = torch.from_numpy(mean_history(x.numpy(), queries).astype(np.float32))
    q_of_target = np.repeat(np.arange(queries.n_queries), np.diff(queries.targets_ptr))
    pairs = torch.from_numpy(np.stack([q_of_target, queries.targets], 1))
    model = TwoTower(x.shape[1], fusion)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for idx in torch.randperm(len(pairs), generator=g).split(batch):
            q, pos = pairs[idx, 0], pairs[idx, 1]
            cand = torch.cat([pos[:, None], torch.randint(len(x), (len(idx), negatives), generator=g)], 1)
            loss = torch.nn.functional.cross_entropy(model(h[q], x[cand]), torch.zeros(len(idx), dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.scale = float(torch.from_numpy(features.astype(np.float32)).norm(dim=1).mean().clamp_min(1e-12))
    return model


@torch.no_grad()
def rank_items(model: TwoTower, features: np.ndarray, queries: SequentialQueries, block: int = 64) -> np.ndarray:
    """(q, K) top items per query by the model's score, history excluded, ties to the lower index."""
    x = torch.from_numpy(features.astype(np.float32)) / model.scale
    h = torch.from_numpy(mean_history(x.numpy(), queries).astype(np.float32))
    item_vectors = model.item(x) if model.fusion == "dot" else None
    top = np.empty((queries.n_queries, K), dtype=np.int64)
    for start in range(0, queries.n_queries, block):
        hb = h[start : start + block]
        if model.fusion == "dot":
            scores = model.query(hb) @ item_vectors.T
        else:
            scores = model(hb, x[None].expand(len(hb), -1, -1))
        scores = scores.numpy().astype(np.float64)
        for r in range(len(hb)):
            qi = start + r
            scores[r, queries.history_items[queries.history_ptr[qi] : queries.history_ptr[qi + 1]]] = -np.inf
        top[start : start + len(hb)] = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return top


def hit_metrics(top: np.ndarray, queries: SequentialQueries) -> dict[str, float]:
    """HR@K and NDCG@K of ranked lists against each query's targets not already in its history."""
    discount = 1.0 / np.log2(np.arange(2, K + 2))
    hr, ndcg = [], []
    for qi in range(queries.n_queries):
        history = set(queries.history_items[queries.history_ptr[qi] : queries.history_ptr[qi + 1]].tolist())
        relevant = set(queries.targets[queries.targets_ptr[qi] : queries.targets_ptr[qi + 1]].tolist()) - history
        if not relevant:
            continue
        hits = np.array([i in relevant for i in top[qi]], dtype=float)
        hr.append(hits.any())
        ndcg.append(hits @ discount / discount[: min(len(relevant), K)].sum())
    if not hr:
        raise DataError(f"task next_item: none of the {queries.n_queries} queries has a target outside its history")
    return {f"hr_at_{K}": float(np.mean(hr)), f"ndcg_at_{K}": float(np.mean(ndcg))}


def top_list_churn(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over queries of 1 - |top_a & top_b| / K."""
    return float(np.mean([1 - len(set(x) & set(y)) / K for x, y in zip(a.tolist(), b.tolist())]))


def homogeneity_study(task: NextItemTask, tables: np.ndarray, seed: int = 0) -> dict[str, dict]:
    """Per fusion: HR@10 and NDCG@10 over pretraining seeds (mean, std) and top-10 churn.

    tables: (K, n, D) one representation's per-seed tables. Also the sequential proxy (no
    training: <mean history, item> on the table itself) for comparison.
    """
    out: dict[str, dict] = {}
    for fusion in FUSIONS:
        tops, scores = [], []
        for table in tables:
            model = train_two_tower(table, task.train, fusion, seed=seed)
            tops.append(rank_items(model, table, task.test))
            scores.append(hit_metrics(tops[-1], task.test))
        out[fusion] = _summarise(scores, tops)
    proxy_tops = [top_k_items(t, task.test, K) for t in tables]
    out["proxy"] = _summarise([hit_metrics(t, task.test) for t in proxy_tops], proxy_tops)
    return out


def _summarise(scores: list[dict[str, float]], tops: list[np.ndarray]) -> dict:
    summary = {}
    for key in scores[0]:
        values = np.array([s[key] for s in scores])
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    summary["top10_churn"] = float(np.mean([top_list_churn(tops[i], tops[j]) for i, j in combinations(range(len(tops)), 2)]))
    return summary
