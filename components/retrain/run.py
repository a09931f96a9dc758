"""retrain stages: resolve production, compare the candidate with it, promote, report."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from reprflow.components.common.artifacts import atomic_dir, read_json, write_json
from reprflow.components.common.provenance import provenance
from reprflow.components.common.registry import Pointer
from reprflow.components.common.tables import read_interactions, read_items
from reprflow.components.package.bundle import SERVED, Bundle
from reprflow.components.retrain.drift import compute_drift
from reprflow.components.retrain.gate import gate
from reprflow.components.retrain.promote import promote
from reprflow.components.retrain.report import drift_plot, render_html, render_markdown


def run_compare(
    production_dir: str, candidate_dir: str, interactions_path: str, items_path: str, config: dict[str, Any],
    out_path: str,
) -> dict[str, Any]:
    """Drift and the gate's decision, in one JSON record."""
    started = time.perf_counter()
    production, candidate = Bundle.load(production_dir), Bundle.load(candidate_dir)
    drift = compute_drift(production, candidate, read_interactions(interactions_path), read_items(items_path), config)
    decision = gate(production, candidate, drift, config)
    out = {
        "gate": decision,
        "drift": drift,
        "tasks": {task: {"metric": e["metric"],
                         "production": {rep: e["offline"][rep] for rep in SERVED},
                         "candidate": {rep: candidate.meta["tasks"][task]["offline"][rep] for rep in SERVED}}
                  for task, e in production.meta["tasks"].items() if task in candidate.meta["tasks"]},
        "meta": provenance(config, inputs={"production": production_dir, "candidate": candidate_dir},
                           duration_s=time.perf_counter() - started),
    }
    write_json(out_path, out)
    return out


def run_promote(candidate_dir: str, registry: str, production: dict[str, Any]) -> dict[str, Any]:
    """Publish the candidate and move the pointer from the generation `production` was read at."""
    return promote(candidate_dir, registry, Pointer(production["version"], int(production["generation"])))


def run_retrain_report(
    dataset_stats: dict[str, Any], production: dict[str, Any], candidate_dir: str, compare_path: str,
    summary_dir: str, html_path: str, markdown_path: str,
) -> dict[str, Any]:
    compare = read_json(compare_path)
    summary = {
        "dataset": {k: int(dataset_stats[k]) for k in ("rows", "items", "baskets", "customers")},
        "inputs": dataset_stats.get("inputs", []),
        "production": {k: production[k] for k in ("name", "version", "uri", "generation")},
        "candidate": {"entities": Bundle.load(candidate_dir).meta["entities"]},
        **{k: compare[k] for k in ("gate", "tasks", "drift")},
    }
    page, md = render_html(summary, drift_plot(summary["drift"])), render_markdown(summary)
    with atomic_dir(summary_dir) as out:
        write_json(out / "summary.json", summary)
        (out / "report.html").write_text(page, encoding="utf-8")
        (out / "report.md").write_text(md, encoding="utf-8")
    shutil.copyfile(Path(summary_dir) / "report.html", html_path)
    shutil.copyfile(Path(summary_dir) / "report.md", markdown_path)
    return summary
