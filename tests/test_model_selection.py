"""Model selection: rank agreement against brute force, the candidate grid, and a local run."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from reprflow.components.common.config import validate_config
from reprflow.components.model_selection.rank_agreement import rank_agreement
from reprflow.components.model_selection.run import candidate_grid
from reprflow.pipelines.cli import main

REPO = Path(__file__).resolve().parents[1]


def brute_kendall(a: np.ndarray, b: np.ndarray) -> float:
    """tau-a over pairs (equals tau-b without ties)."""
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in combinations(range(len(a)), 2))
    return s / (len(a) * (len(a) - 1) / 2)


def test_rank_agreement_limits_and_brute_force() -> None:
    x = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    assert rank_agreement(x, 2 * x + 1) == {"kendall_tau": pytest.approx(1.0), "weighted_tau": pytest.approx(1.0)}
    assert rank_agreement(x, -x)["kendall_tau"] == pytest.approx(-1.0)
    assert rank_agreement(x, -x)["weighted_tau"] == pytest.approx(-1.0)
    y = np.random.default_rng(0).permutation(x)
    assert rank_agreement(x, y)["kendall_tau"] == pytest.approx(brute_kendall(x, y))
    # Only a monotone transform of the scores: the agreement is unchanged.
    assert rank_agreement(np.exp(x), y) == pytest.approx(rank_agreement(x, y))
    assert rank_agreement(np.ones(5), y) == {"kendall_tau": None, "weighted_tau": None}
    with pytest.raises(ValueError):
        rank_agreement(x, x[:3])


def test_weighted_tau_cares_more_about_the_top() -> None:
    truth = np.arange(10.0)
    swap_top, swap_bottom = truth.copy(), truth.copy()
    swap_top[[9, 8]] = swap_top[[8, 9]]
    swap_bottom[[0, 1]] = swap_bottom[[1, 0]]
    top, bottom = rank_agreement(swap_top, truth), rank_agreement(swap_bottom, truth)
    assert top["kendall_tau"] == pytest.approx(bottom["kendall_tau"])
    assert top["weighted_tau"] < bottom["weighted_tau"]


def test_candidate_grid_is_the_product_with_names() -> None:
    cfg = validate_config({"data": {"uri": "x"}, "selection": {"dims": [8, 16], "windows": [2, 5, 10], "negatives": [5]}})
    grid = candidate_grid(cfg)
    assert len(grid) == 6 and len({c["name"] for c in grid}) == 6
    assert grid[0] == {"name": "d8-w2-n5", "dim": 8, "window": 2, "negatives": 5}


@pytest.mark.pipeline
def test_select_runs_locally_and_reports_agreement(tmp_path: Path, retail_path: Path) -> None:
    out = tmp_path / "select"
    assert main(["select", "--config", str(REPO / "configs" / "tiny.yaml"), "--data", str(retail_path),
                 "--output-dir", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert set(s["candidates"]) == {"d4-w1-n3", "d4-w3-n3", "d16-w1-n3", "d16-w3-n3", "random"}
    for task, board in s["leaderboard"].items():
        assert len(board) == 5
        downstream = [row["downstream"] for row in board]
        assert downstream == sorted(downstream, reverse=True)
    assert set(s["selection"]["product_type"]) >= {"logme", "kernel_alignment", "ridge_gcv", "hscore", "transrate"}
    assert set(s["selection"]["log_price"]) == {"logme", "kernel_alignment", "ridge_gcv"}  # class-free metrics only
    for metrics in s["selection"].values():
        for v in metrics.values():
            assert v["kendall_tau"] is None or -1 <= v["kendall_tau"] <= 1
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_run_leaderboard_is_best_first_with_a_nan_last() -> None:
    from reprflow.components.report.report import LEADERBOARD_KEYS, leaderboard

    reps = {name: dict.fromkeys(LEADERBOARD_KEYS, 0.0) | {"downstream_mean": m}
            for name, m in (("a", 0.5), ("b", float("nan")), ("c", 0.7), ("d", 0.9))}
    board = leaderboard({"task": {"representations": reps}})["task"]
    assert [row["representation"] for row in board] == ["d", "c", "a", "b"]


def test_a_float32_candidate_is_scored_with_its_own_rank_tolerance() -> None:
    """A collapsed (rank-8) float32 table: H-score in the selection must not count its rounding noise."""
    from reprflow.components.common.tasks import Task
    from reprflow.components.evaluate_predictability.metrics.hscore import hscore
    from reprflow.components.model_selection.run import score_candidate

    rng = np.random.default_rng(0)
    n, d, r = 3000, 64, 8
    y = rng.integers(0, 15, n)
    train = rng.random(n) < 0.8
    signal = rng.normal(size=(n, r))
    signal[:, 0] += 0.5 * (y % 3)
    mixing = rng.normal(size=(r, d))
    table = (signal @ mixing).astype(np.float32)
    scores = score_candidate(Task("t", "multiclass", y, train, rows=np.arange(n)), table)
    exact = hscore((signal @ mixing)[train], y[train])  # the float64 rank-8 features
    assert scores["hscore"] == pytest.approx(exact, rel=1e-3)
    assert scores["hscore"] == pytest.approx(hscore(table[train], y[train]), rel=1e-12)
