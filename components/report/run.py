"""report stage: merge the stages' outputs into summary.json, report.html and report.md."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from reprflow.components.common.artifacts import atomic_dir, read_json, write_json
from reprflow.components.report.report import build_summary, render_figures, render_html, render_markdown

STAGE_ORDER = ("ingest", "pretrain", "collect", "featurize", "evaluate", "downstream", "report", "pretrain_task_sum")


def stage_timings(dataset_stats: dict, rep_meta: dict, scores: dict, results: dict) -> dict[str, float]:
    timings = {"ingest": dataset_stats["duration_s"], **rep_meta["timings_s"],
               "evaluate": scores["meta"]["duration_s"], "downstream": results["meta"]["duration_s"]}
    return {k: timings[k] for k in STAGE_ORDER if k in timings}


def key_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers shown in the KFP UI's metrics view."""
    out = {f"{rep}_{k}": v for rep, vals in summary["stability"].items() for k, v in vals.items()}
    for task, entry in summary["tasks"].items():
        for rep, vals in entry["representations"].items():
            for k in ("downstream_mean", "churn", "swap_mean"):
                out[f"{task}_{rep}_{k}"] = vals[k]
    return out


def run_report(
    dataset_stats: dict, representations_dir: str, scores_path: str, results_path: str,
    summary_dir: str, html_path: str, markdown_path: str,
) -> dict[str, Any]:
    started = time.perf_counter()
    rep_meta = read_json(Path(representations_dir) / "meta.json")
    scores, results = read_json(scores_path), read_json(results_path)
    timings = stage_timings(dataset_stats, rep_meta, scores, results)
    summary = build_summary(dataset_stats, rep_meta["seeds"], timings, scores, results)
    summary["provenance"] = {k: rep_meta[k] for k in ("code_version", "image", "config_hash")}
    figures = render_figures(summary)
    summary["timings_s"]["report"] = round(time.perf_counter() - started, 3)
    with atomic_dir(summary_dir) as out:
        write_json(out / "summary.json", summary)
        (out / "report.html").write_text(render_html(summary, figures), encoding="utf-8")
        (out / "report.md").write_text(render_markdown(summary), encoding="utf-8")
    shutil.copyfile(Path(summary_dir) / "report.html", html_path)
    shutil.copyfile(Path(summary_dir) / "report.md", markdown_path)
    return {"summary": summary, "metrics": key_metrics(summary)}
