"""The report's figures, as PNG bytes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"raw": "#d62728", "aligned": "#ff7f0e", "fpr": "#1f77b4", "fpr_seedmean": "#2ca02c",
          "concat": "#9467bd", "ensemble": "#8c564b"}
STABILITY_LABELS = {
    "knn_overlap_at_10": "k-NN overlap@10 (higher = stabler)",
    "linear_cka": "linear CKA (higher = stabler)",
    "procrustes_residual": "Procrustes residual (lower = stabler)",
}


def png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _color(name: str) -> str:
    return COLORS.get(name, "#7f7f7f")


def stability_plot(stability: dict[str, dict[str, float]]) -> bytes:
    """One panel per stability metric, one bar per representation."""
    reps = list(stability)
    metrics = [m for m in STABILITY_LABELS if m in stability[reps[0]]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        values = [stability[r][metric] for r in reps]
        ax.bar(reps, values, color=[_color(r) for r in reps])
        ax.set_title(STABILITY_LABELS[metric], fontsize=9)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("Stability across pretraining seeds", fontsize=11, y=1.04)
    return png(fig)


def downstream_plot(tasks: dict[str, Any]) -> bytes:
    """Per task: each seed's test metric (dots), and the metric when served another seed (x)."""
    names = list(tasks)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4))
    for ax, task in zip(np.atleast_1d(axes), names):
        reps = tasks[task]["representations"]
        for i, (rep, r) in enumerate(reps.items()):
            seeds = r["per_seed"]
            ax.scatter([i - 0.1] * len(seeds), seeds, color=_color(rep), s=22, label="retrained" if i == 0 else None)
            ax.scatter([i + 0.12] * len(r["swap"]), r["swap"], color=_color(rep), marker="x", s=22,
                       label="served another seed" if i == 0 else None)
        ax.set_xticks(range(len(reps)), list(reps), fontsize=8)
        ax.set_title(f"{task} ({tasks[task]['metric']})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="best")
    fig.suptitle("Downstream test metric per pretraining seed: retrained vs swapped", fontsize=11, y=1.03)
    return png(fig)


def churn_plot(tasks: dict[str, Any]) -> bytes:
    names = list(tasks)
    reps = list(next(iter(tasks.values()))["representations"])
    width = 0.8 / len(reps)
    fig, ax = plt.subplots(figsize=(1.8 * len(names) + 2, 3.2))
    for i, rep in enumerate(reps):
        values = [tasks[t]["representations"][rep]["churn"] for t in names]
        ax.bar(np.arange(len(names)) + i * width, values, width, color=_color(rep), label=rep)
    ax.set_xticks(np.arange(len(names)) + width * (len(reps) - 1) / 2, names, fontsize=8)
    ax.set_ylabel("prediction churn between seeds")
    ax.legend(fontsize=8)
    ax.set_title("Retrain churn (lower = stabler)", fontsize=11)
    return png(fig)


def agreement_plot(
    selection: dict[str, dict[str, dict]], title: str = "Does the metric rank candidates as the downstream model does?"
) -> bytes:
    """Heatmap of Kendall tau, metrics x tasks (blank where a metric does not apply)."""
    tasks = list(selection)
    metrics = sorted({m for t in tasks for m in selection[t]})
    grid = np.full((len(metrics), len(tasks)), np.nan)
    for j, t in enumerate(tasks):
        for i, m in enumerate(metrics):
            v = selection[t].get(m, {}).get("kendall_tau")
            grid[i, j] = np.nan if v is None else v
    fig, ax = plt.subplots(figsize=(1.9 * len(tasks) + 2.5, 0.45 * len(metrics) + 1.5))
    im = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_yticks(range(len(metrics)), metrics, fontsize=8)
    for i, j in np.ndindex(grid.shape):
        if np.isfinite(grid[i, j]):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="Kendall tau with downstream")
    ax.set_title(title, fontsize=10)
    return png(fig)


def tradeoff_plot(tasks: dict[str, Any]) -> bytes:
    """Per task, each representation: its retrained metric against its churn (dot), and the metric
    it keeps when served another seed (x, joined to the dot): up and left is better."""
    names = list(tasks)
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 3.6))
    for ax, task in zip(np.atleast_1d(axes), names):
        for rep, r in tasks[task]["representations"].items():
            ax.plot([r["churn"]] * 2, [r["downstream_mean"], r["swap_mean"]], color=_color(rep), alpha=0.4, lw=1)
            ax.scatter(r["churn"], r["downstream_mean"], color=_color(rep), s=30, label=rep)
            ax.scatter(r["churn"], r["swap_mean"], color=_color(rep), marker="x", s=30)
        ax.set_xlabel("retrain churn between seeds", fontsize=8)
        ax.set_title(f"{task} ({tasks[task]['metric']})", fontsize=10)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="best")
    fig.suptitle("Featurizers: accuracy (dot: retrained, x: served another seed) vs churn", fontsize=11, y=1.03)
    return png(fig)
