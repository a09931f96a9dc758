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
