"""Sequential proxy: brute-force ranking, closed forms, invariances, extremes and basket parsing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reprflow.components.evaluate_predictability.metrics.sequential_proxy import (
    SequentialQueries,
    mean_history,
    per_query_scores,
    queries_from_baskets,
    sequential_proxy,
    top_k_items,
)


def csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.r_[0, np.cumsum([len(x) for x in lists])].astype(np.int64)
    return ptr, np.array([i for x in lists for i in x], dtype=np.int64)


def make_queries(histories: list[list[int]], targets: list[list[int]]) -> SequentialQueries:
    hp, hi = csr(histories)
    tp, ti = csr(targets)
    return SequentialQueries(hp, hi, tp, ti)


def brute_force(
    e: np.ndarray, histories: list[list[int]], targets: list[list[int]], k: int, exclude: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full score vector, full stable sort (ties: lower index first), ranks read off one by one."""
    n = e.shape[0]
    tops, hrs, ndcgs = [], [], []
    for hist, targ in zip(histories, targets):
        s = e @ e[hist].mean(axis=0)
        if exclude:
            s[hist] = -np.inf
        order = np.argsort(-s, kind="stable")
        tops.append(order[:k])
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(1, n + 1)
        rel = [t for t in targ if not (exclude and t in hist)]
        if not rel:
            hrs.append(np.nan)
            ndcgs.append(np.nan)
            continue
        ranks = sorted(int(rank[t]) for t in rel)
        hrs.append(float(ranks[0] <= k))
        dcg = sum(1.0 / np.log2(r + 1) for r in ranks if r <= k)
        idcg = sum(1.0 / np.log2(r + 1) for r in range(1, min(k, len(rel)) + 1))
        ndcgs.append(dcg / idcg)
    return np.array(tops), np.array(hrs), np.array(ndcgs)


def random_queries(
    rng: np.random.Generator, n: int, q: int, lengths: list[int], max_targets: int
) -> tuple[list[list[int]], list[list[int]]]:
    histories = [rng.choice(n, size=rng.choice(lengths), replace=True).tolist() for _ in range(q)]
    targets = [rng.choice(n, size=rng.integers(1, max_targets + 1), replace=False).tolist() for _ in range(q)]
    return histories, targets


def dyadic_tie_data(seed: int, n: int, q: int) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """Embeddings in {-1, 0, 1}^3 (many equal scores) and histories of length 1, 2 or 4,
    so every mean and every score is exact in float64 and ties are real ties."""
    rng = np.random.default_rng(seed)
    e = rng.integers(-1, 2, size=(n, 3)).astype(np.float64)
    histories, targets = random_queries(rng, n, q, [1, 2, 4], max_targets=4)
    return e, histories, targets


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("block", [1, 6, 1000])
@pytest.mark.parametrize("kind", ["ties", "gaussian", "few_items"])
def test_matches_brute_force(kind: str, block: int, k: int, exclude: bool) -> None:
    if kind == "ties":
        e, histories, targets = dyadic_tie_data(seed=k, n=25, q=40)
    elif kind == "few_items":  # n - |history| < k: -inf items fill the tail of the top k
        e, histories, targets = dyadic_tie_data(seed=10 + k, n=8, q=30)
    else:
        rng = np.random.default_rng(100 + k)
        e = rng.normal(size=(60, 5))
        histories, targets = random_queries(rng, 60, 45, [1, 2, 3, 5, 9], max_targets=5)
    queries = make_queries(histories, targets)
    top, hr, ndcg = brute_force(e, histories, targets, k, exclude)

    np.testing.assert_array_equal(top_k_items(e, queries, k, exclude, block), top)
    got_hr, got_ndcg = per_query_scores(e, queries, k, exclude, block)
    np.testing.assert_array_equal(got_hr, hr)
    np.testing.assert_allclose(got_ndcg, ndcg, rtol=1e-12, atol=0)

    res = sequential_proxy(e, queries, k, exclude, block)
    assert set(res) == {f"hr_at_{k}", f"ndcg_at_{k}"}
    assert res[f"hr_at_{k}"] == pytest.approx(np.nanmean(hr), rel=1e-12)
    assert res[f"ndcg_at_{k}"] == pytest.approx(np.nanmean(ndcg), rel=1e-12)


def test_tie_data_really_has_boundary_ties() -> None:
    """Guards the brute-force test above: its tie case must exercise the tie-breaking path."""
    e, histories, _ = dyadic_tie_data(seed=3, n=25, q=40)
    s = np.array([e @ e[h].mean(axis=0) for h in histories])
    kth = -np.sort(-s, axis=1)[:, 2]
    assert ((s == kth[:, None]).sum(axis=1) > 1).mean() > 0.5


def test_mean_history_is_the_mean_of_rows() -> None:
    rng = np.random.default_rng(1)
    e = rng.normal(size=(20, 4)).astype(np.float32)
    histories, targets = random_queries(rng, 20, 9, [1, 3, 6], max_targets=2)
    h = mean_history(e, make_queries(histories, targets))
    assert h.shape == (9, 4) and h.dtype == np.float64
    np.testing.assert_allclose(h, [e[x].astype(np.float64).mean(axis=0) for x in histories], rtol=1e-12)


def cluster_embeddings(target_scale: float) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """Six clusters on orthogonal axes u_c: 4 history items at u_c, 3 target items at scale * u_c."""
    n_c, n_hist, n_targ = 6, 4, 3
    e, histories, targets = [], [], []
    for c in range(n_c):
        u = np.eye(n_c)[c]
        base = len(e)
        e += [u] * n_hist + [target_scale * u] * n_targ
        histories.append(list(range(base, base + n_hist)))
        targets.append(list(range(base + n_hist, base + n_hist + n_targ)))
    return np.array(e), histories, targets


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_perfect_embeddings_score_one(k: int, exclude: bool) -> None:
    e, histories, targets = cluster_embeddings(target_scale=2.0)  # target scores 2 > history 1 > others 0
    res = sequential_proxy(e, make_queries(histories, targets), k=k, exclude_history=exclude, block_queries=4)
    assert res == {f"hr_at_{k}": 1.0, f"ndcg_at_{k}": 1.0}
    # the same design with targets pointing away from the history is never in the top k
    e_bad, _, _ = cluster_embeddings(target_scale=-2.0)
    res = sequential_proxy(e_bad, make_queries(histories, targets), k=k, exclude_history=exclude)
    assert res == {f"hr_at_{k}": 0.0, f"ndcg_at_{k}": 0.0}


def test_random_embeddings_hit_at_the_chance_rate() -> None:
    """A target drawn uniformly from the n - |history| candidates is in the top k with
    probability k / (n - |history|), and NDCG@k has mean sum_{r<=k} 1/log2(r+1) / (n - |history|)."""
    rng = np.random.default_rng(7)
    n, q, k = 300, 4000, 20
    e = rng.normal(size=(n, 16))
    histories, targets = [], []
    for _ in range(q):
        perm = rng.permutation(n)
        m = int(rng.integers(50, 201))
        histories.append(perm[:m].tolist())
        targets.append([int(perm[rng.integers(m, n)])])
    n_cand = n - np.array([len(h) for h in histories])
    p = k / n_cand
    res = sequential_proxy(e, make_queries(histories, targets), k=k)
    sigma = np.sqrt((p * (1 - p)).sum()) / q
    assert abs(res["hr_at_20"] - p.mean()) < 4 * sigma
    expected_ndcg = (np.sum(1 / np.log2(np.arange(2, k + 2))) / n_cand).mean()
    assert abs(res["ndcg_at_20"] - expected_ndcg) < 4 * sigma


def test_invariant_to_rotation_and_item_relabelling() -> None:
    rng = np.random.default_rng(3)
    n, d, k = 200, 8, 10
    e = rng.normal(size=(n, d)) + 0.5 * rng.normal(size=d)
    histories, targets = random_queries(rng, n, 150, [1, 2, 5, 12], max_targets=6)
    queries = make_queries(histories, targets)
    base = per_query_scores(e, queries, k, block_queries=64)
    assert np.nanmean(base[0]) > 0  # a non-trivial metric, else the invariances below say nothing

    rot = e @ ortho_group.rvs(d, random_state=4)
    np.testing.assert_array_equal(top_k_items(rot, queries, k), top_k_items(e, queries, k))
    np.testing.assert_array_equal(per_query_scores(rot, queries, k), base)

    new_index = rng.permutation(n)  # old item i becomes new item new_index[i]
    e_perm = np.empty_like(e)
    e_perm[new_index] = e
    q_perm = make_queries([new_index[h].tolist() for h in histories], [new_index[t].tolist() for t in targets])
    np.testing.assert_array_equal(top_k_items(e_perm, q_perm, k), new_index[top_k_items(e, queries, k)])
    np.testing.assert_array_equal(per_query_scores(e_perm, q_perm, k), base)


@pytest.mark.parametrize("r", range(1, 9))
@pytest.mark.parametrize("tied", [False, True])
def test_single_target_ndcg_is_one_over_log2_rank_plus_one(r: int, tied: bool) -> None:
    """History = item 0 with e_0 = 1 (d = 1), so item j scores e_j. Distinct values 20 - j,
    or all items tied, both put item r at rank r among the candidates 1..11."""
    k = 5
    e = np.ones((12, 1)) if tied else (20.0 - np.arange(12))[:, None]
    e[0] = 1.0
    hr, ndcg = per_query_scores(e, make_queries([[0]], [[r]]), k=k)
    assert hr[0] == float(r <= k)
    assert ndcg[0] == pytest.approx(1 / np.log2(r + 1) if r <= k else 0.0, rel=1e-15, abs=0)


def test_multi_target_ndcg_and_repeat_targets() -> None:
    e = (20.0 - np.arange(12))[:, None]
    e[0] = 1.0
    # targets at candidate ranks 1 and 3: DCG = 1 + 1/2, IDCG = 1 + 1/log2(3)
    hr, ndcg = per_query_scores(e, make_queries([[0]], [[1, 3]]), k=5)
    assert (hr[0], ndcg[0]) == (1.0, pytest.approx(1.5 / (1 + 1 / np.log2(3)), rel=1e-15))
    # a target that is also in the history: not relevant under exclusion, relevant (rank 12) without
    queries = make_queries([[0], [0, 5]], [[0, 3], [0]])
    # under exclusion query 0 has one relevant target (3, candidate rank 3) and query 1 none
    hr, ndcg = per_query_scores(e, queries, k=3)
    np.testing.assert_array_equal(hr, [1.0, np.nan])
    np.testing.assert_array_equal(ndcg, [0.5, np.nan])
    assert sequential_proxy(e, queries, k=3) == {"hr_at_3": 1.0, "ndcg_at_3": 0.5}
    e2 = e.copy()
    e2[0] = 100.0  # item 0 now ranks 1 and item 3 ranks 4 when the history is not excluded
    hr, ndcg = per_query_scores(e2, queries, k=3, exclude_history=False)
    np.testing.assert_allclose(ndcg, [1 / (1 + 1 / np.log2(3)), 1.0])
    np.testing.assert_array_equal(hr, [1.0, 1.0])
    with pytest.raises(ValueError, match="all occur in its history"):
        sequential_proxy(e, make_queries([[0, 5]], [[5]]), k=3)


BASKETS = [  # customer, day, basket, item
    ("b", 3, 20, 5),
    ("b", 3, 20, 5),  # the same item twice in one basket
    ("b", 1, 10, 2),
    ("b", 1, 10, 7),
    ("b", 2, 11, 2),
    ("a", 5, 30, 1),
    ("a", 4, 31, 3),  # a's baskets run 31 then 30: time decides, not the basket id
    ("a", 5, 30, 3),  # bought before, kept as a target
    ("c", 1, 40, 4),  # a single basket: no query
    ("d", 1, 50, 6),
    ("d", 2, 51, 6),
    ("e", 7, 61, 8),  # same day: the larger basket id is the later one
    ("e", 7, 60, 9),
]


def basket_arrays(rows: list[tuple[str, int, int, int]]) -> tuple[np.ndarray, ...]:
    c, t, b, i = zip(*rows)
    return np.array(c), np.array(t), np.array(b), np.array(i)


def test_queries_from_baskets_by_hand() -> None:
    customer, day, basket, item = basket_arrays(BASKETS)
    q = queries_from_baskets(customer, day, basket, item)
    # queries: a, b, d, e
    np.testing.assert_array_equal(q.history_ptr, [0, 1, 3, 4, 5])
    np.testing.assert_array_equal(q.history_items, [3, 2, 7, 6, 9])
    np.testing.assert_array_equal(q.targets_ptr, [0, 2, 3, 4, 5])
    np.testing.assert_array_equal(q.targets, [1, 3, 5, 6, 8])
    assert q.history_items.dtype == np.int64 and q.targets_ptr.dtype == np.int64

    stamps = np.datetime64("2011-01-01T00:00") + day.astype("timedelta64[h]")
    shuffled = np.random.default_rng(0).permutation(len(BASKETS))
    q2 = queries_from_baskets(customer[shuffled], stamps[shuffled], basket[shuffled], item[shuffled])
    for name in ("history_ptr", "history_items", "targets_ptr", "targets"):
        np.testing.assert_array_equal(getattr(q2, name), getattr(q, name))

    only_b = queries_from_baskets(customer, day, basket, item, min_history=2)
    np.testing.assert_array_equal(only_b.history_ptr, [0, 2])
    np.testing.assert_array_equal(only_b.history_items, [2, 7])
    np.testing.assert_array_equal(only_b.targets, [5])
    assert queries_from_baskets(customer, day, basket, item, min_history=3).n_queries == 0

    # a basket whose rows carry several times is dated by its earliest row: b's basket 20 at
    # days (3, 4) stays last; at days (0, 4) it comes first and b's last basket becomes 11
    late = queries_from_baskets(customer, np.r_[3, 4, day[2:]], basket, item)
    np.testing.assert_array_equal(late.history_items, q.history_items)
    np.testing.assert_array_equal(late.targets, q.targets)
    early = queries_from_baskets(customer, np.r_[0, 4, day[2:]], basket, item)
    np.testing.assert_array_equal(early.history_ptr, [0, 1, 4, 5, 6])
    np.testing.assert_array_equal(early.history_items, [3, 2, 5, 7, 6, 9])
    np.testing.assert_array_equal(early.targets, [1, 3, 2, 6, 8])

    res = sequential_proxy(np.eye(10), q, k=2, exclude_history=False)
    assert set(res) == {"hr_at_2", "ndcg_at_2"}


@pytest.mark.parametrize(
    "args,match",
    [
        (([0, 2, 2], [1, 2], [0, 1, 2], [3, 4]), "query 1 has an empty history"),
        (([0, 1, 2], [1, 2], [0, 0, 2], [3, 4]), "query 0 has an empty target set"),
        (([0, 2, 1, 3], [1, 2, 5], [0, 1, 2, 3], [3, 4, 5]), "not monotone"),
        (([0, 1, 3], [1, 2], [0, 1, 2], [3, 4]), "end at 2"),
        (([1, 2], [1, 2], [0, 1], [3]), "start at 0"),
        (([0, 1, 2], [1, 2], [0, 1], [3]), "q \\+ 1"),
        (([0, 1], [-1], [0, 1], [3]), "negative"),
        (([0, 1], [1.0], [0, 1], [3]), "integers"),
        (([0, 1, 2], [1, 2], [0, 1, 3], [3, 4, 4]), "query 1 repeats target item 4"),
    ],
)
def test_invalid_queries(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SequentialQueries(*(np.array(a) for a in args))


def test_invalid_scoring_inputs() -> None:
    e = np.random.default_rng(0).normal(size=(6, 2))
    q = make_queries([[0], [1, 2]], [[3], [4, 5]])
    with pytest.raises(ValueError, match="query 1 has targets index 9 but there are only 6 items"):
        sequential_proxy(e, make_queries([[0], [1]], [[3], [9]]), k=2)
    with pytest.raises(ValueError, match="history_items index 7"):
        mean_history(e, make_queries([[7]], [[1]]))
    for k in (0, 7, 2.0):
        with pytest.raises(ValueError, match="k must be"):
            sequential_proxy(e, q, k=k)
    with pytest.raises(ValueError, match="block_queries"):
        sequential_proxy(e, q, k=2, block_queries=0)
    bad = e.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sequential_proxy(bad, q, k=2)
    with pytest.raises(ValueError, match="\\(n, d\\)"):
        sequential_proxy(e[:, 0], q, k=2)
    with pytest.raises(ValueError, match="no queries"):
        sequential_proxy(e, make_queries([], []), k=2)


def test_invalid_baskets() -> None:
    customer, day, basket, item = basket_arrays(BASKETS)
    with pytest.raises(ValueError, match="basket 20 belongs to several customers"):
        queries_from_baskets(np.append(customer[:-1], "a"), np.r_[day[:-1], 3], np.r_[basket[:-1], 20], item)
    shared = basket.astype(str).astype(object)
    shared[8] = "20"  # c's basket given b's basket id
    with pytest.raises(ValueError, match="basket '20' belongs to several customers"):
        queries_from_baskets(customer, day, shared, item)
    with pytest.raises(ValueError, match="same length"):
        queries_from_baskets(customer, day[:-1], basket, item)
    with pytest.raises(ValueError, match="same length"):
        queries_from_baskets(customer, day, basket, item[:-1])
    with pytest.raises(ValueError, match="min_history"):
        queries_from_baskets(customer, day, basket, item, min_history=0)
    with pytest.raises(ValueError, match="negative"):
        queries_from_baskets(customer, day, basket, np.r_[-1, item[1:]])


def test_item_indices_must_be_inside_the_table_and_k_may_be_all_items() -> None:
    table = np.eye(5)
    with pytest.raises(ValueError, match="only 5 items"):  # a target index equal to n is out of range
        per_query_scores(table, SequentialQueries([0, 1], [1], [0, 1], [5]), k=2)
    with pytest.raises(ValueError, match="only 5 items"):
        sequential_proxy(table, SequentialQueries([0, 1], [5], [0, 1], [1]), k=2)
    # k = n: every item not in the history is in the top k, so the target is always a hit
    assert sequential_proxy(table, SequentialQueries([0, 1], [0], [0, 1], [3]), k=5)["hr_at_5"] == 1.0
