"""The model-selection report: leaderboards and rank agreement, as JSON, HTML and Markdown."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from reprflow.components.common.artifacts import atomic_dir, read_json, write_json
from reprflow.components.report.plots import agreement_plot
from reprflow.components.report.render import html_table, img, markdown_table


def build_selection_summary(dataset: dict, scores: dict) -> dict[str, Any]:
    tasks = scores["tasks"]
    return {
        "dataset": {k: int(dataset[k]) for k in ("rows", "items", "baskets", "customers")},
        "candidates": scores["hyperparameters"],
        "selection": {t: e["agreement"] for t, e in tasks.items()},
        "leaderboard": {
            t: [{"candidate": c, **e["candidates"][c]} for c in e["leaderboard"]] for t, e in tasks.items()
        },
        "metric": {t: e["metric"] for t, e in tasks.items()},
        "timings_s": {"ingest": dataset["duration_s"], "score": scores["meta"]["duration_s"]},
    }


def _rows(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    out = []
    for task, board in summary["leaderboard"].items():
        metrics = [k for k in board[0] if k != "candidate"]
        rows = [[r["candidate"], *("n/a" if r[m] is None else f"{r[m]:.4f}" for m in metrics)] for r in board]
        out.append((f"{task} ({summary['metric'][task]})", ["candidate", *metrics], rows))
    head = ["task", "metric", "kendall_tau", "weighted_tau"]
    rows = [[t, m, *("n/a" if v[k] is None else f"{v[k]:.3f}" for k in ("kendall_tau", "weighted_tau"))]
            for t, ms in summary["selection"].items() for m, v in ms.items()]
    out.append(("rank agreement with the downstream metric", head, rows))
    return out


def render_selection_markdown(summary: dict) -> str:
    parts = ["# reprflow model selection", "Candidates sorted by their downstream test metric; every "
             "predictability metric computed before training, on the training split."]
    for title, head, rows in _rows(summary):
        parts += [f"## {title}", markdown_table(head, rows)]
    return "\n\n".join(parts) + "\n"


def render_selection_html(summary: dict, figure: bytes) -> str:
    sections = [f"<h2>{html.escape(title)}</h2>{html_table(head, rows)}" for title, head, rows in _rows(summary)]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reprflow model selection</title>
<style>body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; }}
table {{ border-collapse: collapse; font-size: 0.85em; }} th, td {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #f4f4f4; }} img {{ max-width: 100%; }}</style></head><body>
<h1>reprflow model selection</h1>
<p>Each candidate embedding is scored by every predictability metric before any downstream model is
trained, then a downstream model is trained on it. "random" is a Gaussian control.</p>
{img(figure, "rank agreement")}
{''.join(sections)}
</body></html>
"""


def run_selection_report(dataset_stats: dict, scores_path: str, summary_dir: str, html_path: str, markdown_path: str) -> dict:
    started = time.perf_counter()
    summary = build_selection_summary(dataset_stats, read_json(scores_path))
    figure = agreement_plot(summary["selection"])
    summary["timings_s"]["report"] = round(time.perf_counter() - started, 3)
    page, md = render_selection_html(summary, figure), render_selection_markdown(summary)
    with atomic_dir(summary_dir) as out:
        write_json(out / "summary.json", summary)
        (out / "report.html").write_text(page, encoding="utf-8")
        (out / "report.md").write_text(md, encoding="utf-8")
    Path(html_path).write_text(page, encoding="utf-8")
    Path(markdown_path).write_text(md, encoding="utf-8")
    metrics = {f"{t}_{m}_kendall_tau": v["kendall_tau"] for t, ms in summary["selection"].items()
               for m, v in ms.items() if v["kendall_tau"] is not None}
    return {"summary": summary, "metrics": metrics}
