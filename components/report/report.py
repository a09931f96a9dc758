"""report stage: one summary for machines (summary.json), one page for people (HTML, Markdown)."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from reprflow.components.model_selection.rank_agreement import rank_agreement
from reprflow.components.report.render import html_table, img, markdown_table
from reprflow.components.report.plots import agreement_plot, churn_plot, downstream_plot, stability_plot, tradeoff_plot

SUMMARY_KEYS = ("logme", "kernel_alignment", "downstream_mean", "downstream_std", "churn", "swap_mean")
PREDICTABILITY = ("logme", "kernel_alignment")
LEADERBOARD_KEYS = ("downstream_mean", "downstream_std", "churn", "swap_mean")


def leaderboard(tasks: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per task, the representations by retrained test metric, best first."""
    return {
        task: sorted(({"representation": rep, **{k: r[k] for k in LEADERBOARD_KEYS}}
                      for rep, r in entry["representations"].items()),
                     key=lambda row: (math.isnan(row["downstream_mean"]), -row["downstream_mean"]))
        for task, entry in tasks.items()
    }


def predictability_agreement(tasks: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per task and predictability metric: how its ranking of the representations (those that are
    one feature table) agrees with their downstream ranking: Kendall and weighted tau."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for task, entry in tasks.items():
        reps = [r for r in entry["representations"].values() if r["logme"] is not None]
        downstream = np.array([r["downstream_mean"] for r in reps])
        out[task] = {m: rank_agreement(np.array([r[m] for r in reps]), downstream) for m in PREDICTABILITY}
    return out


def build_summary(
    dataset: dict[str, int], seeds: list[int], timings: dict[str, float],
    predictability: dict[str, Any], downstream: dict[str, Any],
) -> dict[str, Any]:
    """Merge the stages' results into the summary.json schema."""
    tasks: dict[str, Any] = {}
    for task, entry in downstream["tasks"].items():
        reps = {}
        for rep, result in entry["representations"].items():
            # The ensemble is not one feature table: it has no predictability scores.
            scores = predictability["tasks"][task].get(rep, {})
            reps[rep] = {
                "logme": scores.get("logme"),
                "kernel_alignment": scores.get("kernel_alignment"),
                **{k: result[k] for k in ("downstream_mean", "downstream_std", "churn", "swap_mean")},
                "per_seed": result["per_seed"],
                "swap": result["swap"],
            }
        tasks[task] = {"metric": entry["metric"], "n_train": entry["n_train"], "n_test": entry["n_test"],
                       "representations": reps}
    return {
        "dataset": {k: int(dataset[k]) for k in ("rows", "items", "baskets", "customers")},
        "homogeneity": downstream["homogeneity"],
        "seeds": list(seeds),
        "timings_s": {k: round(float(v), 3) for k, v in timings.items()},
        "stability": predictability["stability"],
        "tasks": tasks,
        "leaderboard": leaderboard(tasks),
        "selection": predictability_agreement(tasks),
        **({"featurizers": downstream["featurizers"]} if downstream.get("featurizers") else {}),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    stab = summary["stability"]
    s_head = ["representation", *next(iter(stab.values())).keys()]
    s_rows = [[rep, *map(_fmt, vals.values())] for rep, vals in stab.items()]
    t_head = ["task", "metric", "representation", *SUMMARY_KEYS]
    t_rows = []
    for task, entry in summary["tasks"].items():
        for rep, vals in entry["representations"].items():
            t_rows.append([task, entry["metric"], rep, *(_fmt(vals[k]) for k in SUMMARY_KEYS)])
    return s_head, s_rows, t_head, t_rows


HOMOGENEITY_KEYS = ("hr_at_10_mean", "hr_at_10_std", "ndcg_at_10_mean", "ndcg_at_10_std", "top10_churn")


def _homogeneity_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["representation", "decoder", *HOMOGENEITY_KEYS]
    rows = [[rep, dec, *(_fmt(v[k]) for k in HOMOGENEITY_KEYS)]
            for rep, decoders in summary["homogeneity"].items() for dec, v in decoders.items()]
    return head, rows


def _leaderboard_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["task", "rank", "representation", *LEADERBOARD_KEYS]
    rows = [[task, str(i + 1), r["representation"], *(_fmt(r[k]) for k in LEADERBOARD_KEYS)]
            for task, board in summary["leaderboard"].items() for i, r in enumerate(board)]
    return head, rows


def _agreement_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["task", "predictability metric", "kendall_tau", "weighted_tau"]
    rows = [[task, m, _fmt(v["kendall_tau"]), _fmt(v["weighted_tau"])]
            for task, metrics in summary["selection"].items() for m, v in metrics.items()]
    return head, rows


def _featurizer_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Variant x task: retrained mean / churn / swapped (the featurizer family, when it was scored)."""
    family = summary.get("featurizers") or {}
    tasks = list(summary["tasks"])
    rows = [[name, *(f"{r[t]['downstream_mean']:.3f} / {r[t]['churn']:.3f} / {r[t]['swap_mean']:.3f}" for t in tasks)]
            for name, r in family.items()]
    return ["featurizer (retrained / churn / swapped)", *tasks], rows


def render_markdown(summary: dict[str, Any]) -> str:
    s_head, s_rows, t_head, t_rows = _table_rows(summary)

    d = summary["dataset"]
    return "\n\n".join([
        "# reprflow run summary",
        f"{d['rows']:,} interactions, {d['items']:,} items, {d['baskets']:,} baskets, "
        f"{d['customers']:,} customers; seeds {summary['seeds']}; "
        f"{summary['timings_s'].get('total', sum(summary['timings_s'].values())):.0f} s.",
        "## Stability across pretraining seeds", markdown_table(s_head, s_rows),
        "## Predictability and downstream results",
        "logme and kernel_alignment are computed before any downstream model is trained; "
        "downstream_mean/std are the test metric over one model per seed; churn is how much those "
        "models' predictions differ; swap_mean is the test metric of a model served another seed's "
        "representation without retraining.",
        markdown_table(t_head, t_rows),
        "## Leaderboard: representations by retrained test metric",
        markdown_table(*_leaderboard_rows(summary)),
        "## Do the predictability scores rank the representations as the downstream models do?",
        markdown_table(*_agreement_rows(summary)),
        *(["## The featurizer family", markdown_table(*_featurizer_rows(summary))] if summary.get("featurizers") else []),
        "## Next item: dot-product (homogeneous) vs MLP (heterogeneous) decoder",
        "proxy: the mean-history dot product on the representation itself, with no training.",
        markdown_table(*_homogeneity_rows(summary)),
    ]) + "\n"


def render_figures(summary: dict[str, Any]) -> dict[str, bytes]:
    """The report's PNG figures by name."""
    return {
        "stability": stability_plot(summary["stability"]),
        "downstream": downstream_plot(summary["tasks"]),
        "churn": churn_plot(summary["tasks"]),
        "tradeoff": tradeoff_plot(summary["tasks"]),
        "agreement": agreement_plot(summary["selection"], "Does the score rank the representations as downstream does?"),
    }


def _featurizer_section(summary: dict[str, Any]) -> str:
    if not summary.get("featurizers"):
        return ""
    return ("<h3>The featurizer family</h3><p>Every FPR variant fitted on this run's embeddings and scored like the "
            "representations above: single-seed features and the seed mean (leave-one-seed-out).</p>"
            + html_table(*_featurizer_rows(summary)))


def render_html(summary: dict[str, Any], figures: dict[str, bytes]) -> str:
    """A self-contained page: inline PNG plots, no scripts, no external resources."""
    s_head, s_rows, t_head, t_rows = _table_rows(summary)

    d = summary["dataset"]
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in summary["timings_s"].items())
    timings += " (pretrain: the seeds' fan-out, wall clock; pretrain_task_sum: its tasks' time added up)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reprflow report</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f4f4f4; }} td:first-child, td:nth-child(2), td:nth-child(3) {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>reprflow report</h1>
<p>{d['rows']:,} interactions, {d['items']:,} items, {d['baskets']:,} baskets, {d['customers']:,} customers.
Seeds: {html.escape(str(summary['seeds']))}. Timings: {html.escape(timings)}.</p>
<h2>Stability across pretraining seeds</h2>
<p>raw: each seed's embeddings; fpr: each seed's cosine kernel to the anchor items;
fpr_seedmean: the kernel averaged over the other seeds.</p>
{img(figures['stability'], 'stability across seeds')}
{html_table(s_head, s_rows)}
<h2>Downstream: retrain and swap stability</h2>
<p>Dots: one model per pretraining seed, trained and tested on that seed. Crosses: the same models
served another seed's representation without retraining, as happens when embeddings are refreshed.</p>
{img(figures['downstream'], 'downstream metric per seed')}
{img(figures['churn'], 'prediction churn')}
<h2>Featurizers: accuracy against stability</h2>
<p>Every representation strategy on the same footing: its test metric when retrained per seed (dot),
what it keeps when served another seed without retraining (x), and the churn of its predictions
between seeds.</p>
{img(figures['tradeoff'], 'accuracy against churn and swap')}
{_featurizer_section(summary)}
<h2>Leaderboard</h2>
{html_table(*_leaderboard_rows(summary))}
<h2>Predictability and downstream results</h2>
<p>logme (evidence per sample) and kernel_alignment (centred) are computed before any downstream
model is trained. Below: how well each score ranks the representations as the downstream models
do (Kendall and weighted tau; the ensemble has no single feature table and is left out).</p>
{html_table(t_head, t_rows)}
{img(figures['agreement'], 'rank agreement')}
{html_table(*_agreement_rows(summary))}
<h2>Next item: encoder/decoder homogeneity</h2>
<p>Two-tower decoders on frozen item representations, one per pretraining seed: dot-product
fusion (homogeneous with item2vec) and MLP fusion (heterogeneous); proxy is the mean-history dot
product with no training. top10_churn: how much the top-10 lists change between seeds.</p>
{html_table(*_homogeneity_rows(summary))}
</body></html>
"""
