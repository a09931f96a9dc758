"""The retrain report: the decision and why, production against the candidate, and the drift."""

from __future__ import annotations

import html
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from reprflow.components.report.plots import png  # noqa: E402
from reprflow.components.report.render import html_table, img, markdown_table  # noqa: E402

COLORS = {"raw": "#d62728", "fpr_seedmean": "#2ca02c"}


def drift_plot(drift: dict[str, Any]) -> bytes:
    """Left: per-entity relative change, raw vs served FPR; right: production-model churn per task."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4))
    for rep, d in drift["representations"].items():
        edges, counts = np.array(d["histogram"]["edges"]), np.array(d["histogram"]["counts"])
        left.stairs(counts / max(counts.sum(), 1), edges, color=COLORS.get(rep), label=rep, lw=1.6)
    left.set_xlabel("relative change ||candidate - production|| / ||production|| (last bin: >= 2)", fontsize=8)
    left.set_ylabel("share of entities", fontsize=8)
    left.legend(fontsize=8)
    left.set_title("How far each entity moved in the retrain", fontsize=10)
    tasks = list(drift["production_model"])
    reps = list(drift["representations"])
    width = 0.8 / len(reps)
    for i, rep in enumerate(reps):
        values = [drift["production_model"][t][rep]["churn"] for t in tasks]
        right.bar(np.arange(len(tasks)) + i * width, values, width, color=COLORS.get(rep), label=rep)
    right.set_xticks(np.arange(len(tasks)) + width * (len(reps) - 1) / 2, tasks, fontsize=8)
    right.set_ylabel("churn of production's predictions", fontsize=8)
    right.set_title("Production model fed the candidate's features", fontsize=10)
    right.legend(fontsize=8)
    return png(fig)


def _sections(summary: dict[str, Any], markdown: bool) -> list[tuple[str, str]]:
    t = markdown_table if markdown else html_table
    checks = t(["check", "passed", "detail"], [[c["check"], "yes" if c["passed"] else "NO", c["detail"]]
                                              for c in summary["gate"]["checks"]])
    tasks = t(["task", "metric", "representation", "production", "candidate"], [
        [task, e["metric"], rep, f"{e['production'][rep]['downstream_mean']:.4f} ± {e['production'][rep]['downstream_std']:.4f}",
         f"{e['candidate'][rep]['downstream_mean']:.4f} ± {e['candidate'][rep]['downstream_std']:.4f}"]
        for task, e in summary["tasks"].items() for rep in e["production"]])
    drift = summary["drift"]
    moved = t(["representation", "median relative change", "p90", "k-NN overlap with production"], [
        [rep, f"{d['relative_change_median']:.3f}", f"{d['relative_change_p90']:.3f}",
         f"{next(v for k, v in d.items() if k.startswith('knn_overlap')):.3f}"]
        for rep, d in drift["representations"].items()])
    swap = t(["task", "representation", "test rows", "production model, production features",
              "production model, candidate's features (not retrained)", "prediction churn",
              "candidate model, candidate's features"], [
        [task, rep, f"{v['n_test']:,}", f"{v['metric_production']:.4f}", f"{v['metric_candidate_features']:.4f}",
         f"{v['churn']:.3f}", f"{v['metric_candidate']:.4f}"]
        for task, reps in drift["production_model"].items() for rep, v in reps.items()])
    return [("Gate", checks),
            ("The same test rows (entities both versions know, production's labels): production's model on the "
             "candidate's features without retraining, and each version's own model", swap),
            (f"Drift of the {drift['entities']['common']:,} entities both versions know", moved),
            ("Offline metrics of each version on its own data (retrained per seed: mean ± std over seeds)", tasks)]


def _headline(summary: dict[str, Any]) -> str:
    p, g = summary["production"], summary["gate"]
    verdict = "PROMOTE" if g["promote"] else "REJECT: production stays as it is"
    why = "" if g["promote"] else " Why: " + " ".join(g["reasons"])
    return (f"Decision: {verdict}. Production {p['version']} ({p['uri']}); candidate trained on "
            f"{summary['dataset']['rows']:,} interactions ({summary['dataset']['items']:,} items).{why}")


def render_markdown(summary: dict[str, Any]) -> str:
    parts = ["# reprflow retrain", _headline(summary)]
    for title, table in _sections(summary, markdown=True):
        parts += [f"## {title}", table]
    return "\n\n".join(parts) + "\n"


def render_html(summary: dict[str, Any], figure: bytes) -> str:
    sections = "".join(f"<h2>{html.escape(title)}</h2>{table}" for title, table in _sections(summary, markdown=False))
    color = "#2ca02c" if summary["gate"]["promote"] else "#d62728"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reprflow retrain</title>
<style>body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }} th {{ background: #f4f4f4; }}
.decision {{ border-left: 6px solid {color}; padding: 0.5em 1em; background: #fafafa; }}
img {{ max-width: 100%; }}</style></head><body>
<h1>reprflow retrain</h1>
<p class="decision">{html.escape(_headline(summary))}</p>
{img(figure, "drift")}
{sections}
</body></html>
"""
