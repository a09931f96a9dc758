"""Sequential proxy: training-free next-item predictability of item embeddings.

Lyu, Chen, Miao, Fang, Xiao, Wang, Qiu, Tsai, Sun, "Pretrained Embeddings for
E-commerce Machine Learning: When it Fails and Why?", WWW 2023 (companion).
Their kernel view of item2vec reads an embedding as the feature map of the
dot-product kernel k(i, j) = <e_i, e_j>; the proxy below asks how well that
kernel alone, with nothing trained on top, ranks a customer's next items.

For item embeddings E (n, d) and a query with history items h_1..h_m (the
items of a customer's previous invoices, repeats counted) and target set T
(the items of the next invoice):

    u        = (1/m) sum_i e_{h_i}                      (d,)   mean history
    s_j      = <u, e_j>,          s = E u              (n,)   one score per item
    rank(t)  = 1 + #{j : s_j > s_t} + #{j < t : s_j = s_t}      (ties: lower index wins)

    HR@k     = 1[ min_{t in T} rank(t) <= k ]
    DCG@k    = sum_{t in T, rank(t) <= k} 1 / log2(rank(t) + 1)
    IDCG@k   = sum_{r=1}^{min(k, |T|)} 1 / log2(r + 1)
    NDCG@k   = DCG@k / IDCG@k

and the reported scores are the means of HR@k and NDCG@k over queries. For a
single target at rank r, NDCG@k = 1 / log2(r + 1) when r <= k and 0 otherwise.

History exclusion (``exclude_history=True``, the default): every item of the
query's history gets score -inf, so the ranking is over the n - |history|
items the customer has not bought yet ("explore" evaluation, the usual
protocol for next-basket recommendation). The relevance set is made consistent
with the candidate set: targets that also occur in the history are removed
from T (they cannot be ranked, and counting them as misses or in IDCG would
only measure the data's repeat-purchase rate, not the embeddings). A query
whose targets all occur in its history has nothing left to predict and is left
out of the averages (its per-query value is NaN). With random embeddings and a
single new target the expected HR@k is then k / (n - |history|). With
``exclude_history=False`` every item is ranked and every target is relevant.

Computation: all query means at once as a sparse (q, n) averaging matrix times
E, then scores H E' in blocks of ``block_queries`` rows, so memory is
O(block_queries * n). Each block's top k comes from np.argpartition, with the
boundary ties (several items sharing the k-th score) resolved towards lower
indices, and a lexsort by (score desc, index asc) within the top k.

Queries are CSR arrays: query i has history history_items[history_ptr[i]:
history_ptr[i + 1]] and targets targets[targets_ptr[i]:targets_ptr[i + 1]].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = [
    "SequentialQueries",
    "mean_history",
    "per_query_scores",
    "queries_from_baskets",
    "sequential_proxy",
    "top_k_items",
]


def _as_index_array(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    out = np.array(a, dtype=np.int64)
    out.setflags(write=False)
    return out


def _check_ptr(ptr: np.ndarray, nnz: int, name: str, what: str) -> None:
    if ptr.size == 0:
        raise ValueError(f"{name} must have q + 1 >= 1 entries, got none")
    if ptr[0] != 0 or ptr[-1] != nnz:
        raise ValueError(f"{name} must start at 0 and end at {nnz}, got {int(ptr[0])} .. {int(ptr[-1])}")
    step = np.diff(ptr)
    if (step < 0).any():
        raise ValueError(f"{name} is not monotone: it decreases after query {int(np.flatnonzero(step < 0)[0])}")
    if (step == 0).any():
        raise ValueError(f"query {int(np.flatnonzero(step == 0)[0])} has an empty {what}")


@dataclass(frozen=True)
class SequentialQueries:
    """Queries as two CSR structures over item indices (stored as read-only int64).

    history_ptr: (q + 1,) offsets into history_items; history_items: (nnz,).
    targets_ptr: (q + 1,) offsets into targets; targets: (nnz_t,).

    Every query needs a non-empty history and a non-empty target set; repeats
    in a history weight the mean, repeats within one query's targets are
    rejected. Item indices must be >= 0 here and < n_items when scored
    (``check_items``).
    """

    history_ptr: np.ndarray
    history_items: np.ndarray
    targets_ptr: np.ndarray
    targets: np.ndarray

    def __post_init__(self) -> None:
        for name in ("history_ptr", "history_items", "targets_ptr", "targets"):
            object.__setattr__(self, name, _as_index_array(getattr(self, name), name))
        if self.history_ptr.shape != self.targets_ptr.shape:
            raise ValueError(
                f"history_ptr and targets_ptr must both have q + 1 entries, "
                f"got {self.history_ptr.size} and {self.targets_ptr.size}"
            )
        _check_ptr(self.history_ptr, self.history_items.size, "history_ptr", "history")
        _check_ptr(self.targets_ptr, self.targets.size, "targets_ptr", "target set")
        for name in ("history_items", "targets"):
            a = getattr(self, name)
            if (a < 0).any():
                raise ValueError(f"{name} has negative item indices, e.g. {int(a[a < 0][0])}")
        t_query = self.target_query()
        order = np.lexsort((self.targets, t_query))
        dup = (np.diff(t_query[order]) == 0) & (np.diff(self.targets[order]) == 0)
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise ValueError(f"query {int(t_query[order][i])} repeats target item {int(self.targets[order][i])}")

    @property
    def n_queries(self) -> int:
        return int(self.history_ptr.size - 1)

    def history_query(self) -> np.ndarray:
        """(nnz,) query index of every history entry."""
        return np.repeat(np.arange(self.n_queries), np.diff(self.history_ptr))

    def target_query(self) -> np.ndarray:
        """(nnz_t,) query index of every target entry."""
        return np.repeat(np.arange(self.n_queries), np.diff(self.targets_ptr))

    def check_items(self, n_items: int) -> None:
        """ValueError unless every history and target index is < n_items."""
        for name, owner in (("history_items", self.history_query), ("targets", self.target_query)):
            a = getattr(self, name)
            if a.size and int(a.max()) >= n_items:
                i = int(np.argmax(a))
                raise ValueError(
                    f"query {int(owner()[i])} has {name} index {int(a[i])} but there are only {n_items} items"
                )


def _as_embeddings(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] == 0 or e.shape[1] == 0:
        raise ValueError(f"embeddings must be a non-empty (n, d) matrix, got shape {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError("embeddings contain NaN or inf")
    return e


def mean_history(embeddings: np.ndarray, queries: SequentialQueries) -> np.ndarray:
    """(q, d) mean of each query's history embeddings (repeats counted)."""
    e = _as_embeddings(embeddings)
    queries.check_items(e.shape[0])
    q = queries.n_queries
    counts = sparse.csr_matrix(
        (np.ones(queries.history_items.size), queries.history_items, queries.history_ptr),
        shape=(q, e.shape[0]),
    )
    return np.asarray(counts @ e) / np.diff(queries.history_ptr)[:, None]


def _member(codes: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Boolean mask of ``codes`` found in ``pool`` (binary search in the sorted pool)."""
    pool = np.sort(pool)
    if pool.size == 0:
        return np.zeros(codes.shape, dtype=bool)
    at = np.minimum(np.searchsorted(pool, codes), pool.size - 1)
    return pool[at] == codes


def _check_k(k: int, n: int, block_queries: int) -> None:
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= n):
        raise ValueError(f"k must be an integer in [1, n_items = {n}], got {k!r}")
    if not (isinstance(block_queries, (int, np.integer)) and block_queries >= 1):
        raise ValueError(f"block_queries must be a positive integer, got {block_queries!r}")


def _top_k_blocks(
    e: np.ndarray, queries: SequentialQueries, k: int, exclude_history: bool, block_queries: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yields (start, stop, top) with top (stop - start, k) item indices, best first."""
    h = mean_history(e, queries)
    neg_et = -e.T  # ascending order of H(-E') is descending order of scores
    for start in range(0, queries.n_queries, block_queries):
        stop = min(start + block_queries, queries.n_queries)
        b = stop - start
        neg = h[start:stop] @ neg_et  # (b, n)
        if not np.isfinite(neg).all():
            raise ValueError("scores overflow float64; rescale the embeddings")
        if exclude_history:
            lo, hi = queries.history_ptr[start], queries.history_ptr[stop]
            rows = np.repeat(np.arange(b), np.diff(queries.history_ptr[start : stop + 1]))
            neg[rows, queries.history_items[lo:hi]] = np.inf
        part = np.argpartition(neg, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(neg, part, axis=1).max(axis=1, keepdims=True)
        # argpartition keeps an arbitrary subset of the items tied at the k-th score;
        # where more of them exist than fit, keep the lowest indices instead
        ambiguous = np.flatnonzero(np.count_nonzero(neg <= kth, axis=1) > k)
        if ambiguous.size:
            sub, t = neg[ambiguous], kth[ambiguous]
            below, tied = sub < t, sub == t
            room = k - np.count_nonzero(below, axis=1, keepdims=True)
            keep = below | (tied & (np.cumsum(tied, axis=1) <= room))
            part[ambiguous] = np.nonzero(keep)[1].reshape(ambiguous.size, k)
        vals = np.take_along_axis(neg, part, axis=1)
        order = np.lexsort((part, vals), axis=1)
        yield start, stop, np.take_along_axis(part, order, axis=1)


def top_k_items(
    embeddings: np.ndarray,
    queries: SequentialQueries,
    k: int = 10,
    exclude_history: bool = True,
    block_queries: int = 4096,
) -> np.ndarray:
    """(q, k) items ranked by <mean history, item>, best first, ties to the lower index.

    With ``exclude_history`` history items score -inf; when fewer than k items
    remain they fill the tail of the row in index order.
    """
    e = _as_embeddings(embeddings)
    _check_k(k, e.shape[0], block_queries)
    out = np.empty((queries.n_queries, k), dtype=np.int64)
    for start, stop, top in _top_k_blocks(e, queries, k, exclude_history, block_queries):
        out[start:stop] = top
    return out


def per_query_scores(
    embeddings: np.ndarray,
    queries: SequentialQueries,
    k: int = 10,
    exclude_history: bool = True,
    block_queries: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """(q,) HR@k and (q,) NDCG@k per query.

    With ``exclude_history`` targets found in the query's history are not
    relevant; a query left with no relevant target gets NaN in both arrays.
    """
    e = _as_embeddings(embeddings)
    n = e.shape[0]
    _check_k(k, n, block_queries)
    q = queries.n_queries
    t_query = queries.target_query()
    t_code = t_query * n + queries.targets
    if exclude_history:
        relevant = ~_member(t_code, queries.history_query() * n + queries.history_items)
    else:
        relevant = np.ones(t_code.size, dtype=bool)
    n_relevant = np.bincount(t_query[relevant], minlength=q)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[np.nan], np.cumsum(discount)])  # ideal[m] = IDCG with m hits, NaN for m = 0
    hr = np.empty(q)
    ndcg = np.empty(q)
    for start, stop, top in _top_k_blocks(e, queries, k, exclude_history, block_queries):
        lo, hi = queries.targets_ptr[start], queries.targets_ptr[stop]
        hit = _member(np.arange(start, stop)[:, None] * n + top, t_code[lo:hi][relevant[lo:hi]])
        m = n_relevant[start:stop]
        hr[start:stop] = np.where(m > 0, hit.any(axis=1), np.nan)
        ndcg[start:stop] = (hit @ discount) / ideal[np.minimum(m, k)]
    return hr, ndcg


def sequential_proxy(
    embeddings: np.ndarray,
    queries: SequentialQueries,
    k: int = 10,
    exclude_history: bool = True,
    block_queries: int = 4096,
) -> dict[str, float]:
    """{"hr_at_{k}", "ndcg_at_{k}"}: per-query HR@k and NDCG@k averaged over queries.

    Queries with no relevant target (all targets in the history, under
    ``exclude_history``) are left out; ValueError if none is left.
    """
    if queries.n_queries == 0:
        raise ValueError("there are no queries")
    hr, ndcg = per_query_scores(embeddings, queries, k, exclude_history, block_queries)
    scored = ~np.isnan(hr)
    if not scored.any():
        raise ValueError("every query's targets all occur in its history; nothing is left to rank")
    return {f"hr_at_{k}": float(hr[scored].mean()), f"ndcg_at_{k}": float(ndcg[scored].mean())}


def _codes(x: np.ndarray, name: str, n: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must be 1-D of the same length as customer ({n}), got shape {a.shape}")
    return np.unique(a, return_inverse=True)[1].reshape(-1)


def queries_from_baskets(
    customer: np.ndarray,
    timestamp: np.ndarray,
    basket: np.ndarray,
    item: np.ndarray,
    min_history: int = 1,
) -> SequentialQueries:
    """One query per customer with >= 2 baskets, in sorted customer order.

    Inputs are parallel (events,) arrays, one row per purchased item; customer,
    timestamp and basket may be of any sortable dtype, item holds item indices.
    A customer's baskets are ordered by (timestamp, basket id); the history is
    the unique items of all baskets but the last, the targets the unique items
    of the last basket (items bought before are kept). Items within a query are
    sorted ascending. Customers with fewer than ``min_history`` distinct
    history items are skipped. Each basket must belong to one customer; a
    basket whose rows carry different timestamps is dated by the earliest.
    """
    if not (isinstance(min_history, (int, np.integer)) and min_history >= 1):
        raise ValueError(f"min_history must be an integer >= 1, got {min_history!r}")
    c = np.asarray(customer)
    if c.ndim != 1:
        raise ValueError(f"customer must be 1-D, got shape {c.shape}")
    n_events = c.shape[0]
    cust = _codes(c, "customer", n_events)
    time = _codes(timestamp, "timestamp", n_events)
    bask = _codes(basket, "basket", n_events)
    items = _as_index_array(item, "item")
    if items.shape[0] != n_events:
        raise ValueError(f"item must have the same length as customer ({n_events}), got {items.shape[0]}")
    if (items < 0).any():
        raise ValueError("item has negative indices")
    none, no_ptr = np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    empty = SequentialQueries(no_ptr, none, no_ptr, none)
    if n_events == 0:
        return empty

    n_baskets = int(bask.max()) + 1
    basket_cust = np.zeros(n_baskets, dtype=np.int64)
    basket_cust[bask] = cust
    clash = basket_cust[bask] != cust
    if clash.any():
        first = np.asarray(basket)[clash][0]
        first = first.item() if isinstance(first, np.generic) else first
        raise ValueError(f"basket {first!r} belongs to several customers")
    # a basket whose rows carry several timestamps (Online Retail has invoices spanning a
    # minute boundary) is dated by its earliest one
    basket_time = np.full(n_baskets, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(basket_time, bask, time)

    # baskets by customer, then time, then basket id; the last of each customer's run is its target basket
    order = np.lexsort((np.arange(n_baskets), basket_time, basket_cust))
    run_end = np.r_[basket_cust[order][1:] != basket_cust[order][:-1], True]
    per_customer = np.bincount(basket_cust)
    is_last = np.zeros(n_baskets, dtype=bool)
    is_last[order[run_end]] = True
    eligible = per_customer[cust] >= 2

    in_target = eligible & is_last[bask]
    in_history = eligible & ~is_last[bask]
    hist = np.unique(np.stack([cust[in_history], items[in_history]]), axis=1)
    targ = np.unique(np.stack([cust[in_target], items[in_target]]), axis=1)
    n_cust = per_customer.size
    hist_count = np.bincount(hist[0], minlength=n_cust)
    keep = (per_customer >= 2) & (hist_count >= min_history)
    hist = hist[:, keep[hist[0]]]
    targ = targ[:, keep[targ[0]]]
    if not keep.any():
        return empty
    return SequentialQueries(
        history_ptr=np.r_[0, np.cumsum(hist_count[keep])],
        history_items=hist[1],
        targets_ptr=np.r_[0, np.cumsum(np.bincount(targ[0], minlength=n_cust)[keep])],
        targets=targ[1],
    )
