"""The A/B handoff: a `reprflow.handoff/1` document, validated, written with its page and summary.

`build_handoff` turns two comparable bundles and the configuration's `ab` section into the
document; `validate_handoff` checks it against `handoff.schema.json` (JSON Schema Draft 2020-12)
and the rules a schema cannot say; `write_handoff` writes `handoff.json`, `handoff.html` and
`handoff.md` into a directory, all or nothing.

The translation from offline to online (written out in the document's `assumptions`): the
treatment's online rate is p_t = p_c (1 + e), p_c the configured baseline rate of the primary
metric and e = (mean_t - mean_c) / mean_c the offline relative effect of the task metric; the
sample size is then `sample_size.two_proportions(p_c, p_t, alpha, power, r)`.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator

from reprflow.components.ab_prep.bundle import Bundle
from reprflow.components.ab_prep.comparability import jaccard
from reprflow.components.ab_prep.sample_size import SampleSize, two_proportions
from reprflow.components.common.artifacts import atomic_dir, write_json
from reprflow.components.common.errors import ReprflowError
from reprflow.components.report.render import html_table, img, markdown_table
from reprflow.version import IMAGE, __version__

HANDOFF_SCHEMA = "reprflow.handoff/1"
SCHEMA_FILE = Path(__file__).with_name("handoff.schema.json")
FORMULA = ("N = [z_(1-alpha/2) sqrt(pbar qbar (1/r + 1/(1-r))) + z_(1-beta) sqrt(p_t q_t / r + p_c q_c / (1-r))]^2"
           " / (p_t - p_c)^2, pbar = r p_t + (1-r) p_c; n_t = ceil(r N), n_c = ceil((1-r) N)"
           " (Fleiss, Levin & Paik 2003, ch. 4; no continuity correction)")


class HandoffError(ReprflowError):
    """The handoff cannot be made or is not valid: names the field and the value."""


@lru_cache(maxsize=1)
def handoff_schema() -> dict[str, Any]:
    """The `reprflow.handoff/1` JSON Schema shipped with the package."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def validate_handoff(doc: Any) -> None:
    """Raise HandoffError (one line: the field, what is wrong) unless `doc` is a valid handoff.

    The schema (closed objects, required fields, ranges, formats), then what JSON Schema cannot
    express: total = control + treatment, traffic shares adding up to 1, the expected rate equal
    to baseline x (1 + relative lift).
    """
    validator = Draft202012Validator(handoff_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    if errors:
        e = errors[0]
        field = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise HandoffError(f"handoff field '{field}': {e.message}{more}")
    s = doc["sample_size"]
    if s["total"] != s["control"] + s["treatment"]:
        raise HandoffError(f"handoff field 'sample_size.total': {s['total']} is not control {s['control']} "
                           f"+ treatment {s['treatment']}")
    split = doc["design"]["traffic_split"]
    if not math.isclose(split["control"] + split["treatment"], 1.0, abs_tol=1e-9):
        raise HandoffError(f"handoff field 'design.traffic_split': shares {split['control']} and "
                           f"{split['treatment']} do not add up to 1")
    pm = doc["primary_metric"]
    if not math.isclose(pm["expected_treatment_rate"], pm["baseline_rate"] * (1 + pm["relative_lift"]),
                        rel_tol=1e-9):
        raise HandoffError(f"handoff field 'primary_metric.expected_treatment_rate': {pm['expected_treatment_rate']}"
                           f" is not baseline_rate x (1 + relative_lift)")


def _arm(b: Bundle, task: str) -> dict[str, Any]:
    prov = b.doc["provenance"]
    return {
        "uri": b.uri,
        "version_id": b.version_id,
        "registry_name": b.name,
        "served_representation": b.served,
        "featurizer_uri": b.file_uri(b.doc["featurizer"]),
        "model_uri": b.file_uri(b.doc["models"][task][b.served]),
        "entities": {"count": b.doc["entities"]["count"], "ids_sha256": b.doc["entities"]["ids_sha256"]},
        "provenance": {
            "code_version": prov["code_version"], "image": prov["image"], "config_hash": prov["config_hash"],
            "seeds": list(prov["seeds"]),
            "inputs": [{"uri": i["uri"], "generation": i["generation"]} for i in prov["inputs"]],
            "created_at": prov["created_at"],
        },
    }


def _offline(b: Bundle, task: str) -> dict[str, Any]:
    o = b.doc["tasks"][task]["offline"][b.served]
    return {"mean": float(o["downstream_mean"]), "std": float(o["downstream_std"]),
            "per_seed": [float(v) for v in o["per_seed"]], "churn": float(o["churn"]),
            "swap_mean": float(o["swap_mean"])}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_handoff(control: Bundle, treatment: Bundle, ab: dict[str, Any], checks: list[dict[str, Any]],
                  created_at: str | None = None) -> dict[str, Any]:
    """The handoff document for two comparable bundles (see the module docstring for the translation).

    `ab` is the configuration's `ab` section (task, primary_metric, baseline_rate, alpha, power,
    traffic_split, min_entity_overlap); `checks` the passed comparability checks. HandoffError when
    the offline effect cannot be turned into an online rate (control mean <= 0, or p_t outside (0, 1)).
    """
    task = ab["task"]
    spec = control.doc["tasks"][task]
    off_c, off_t = _offline(control, task), _offline(treatment, task)
    mean_c, mean_t = off_c["mean"], off_t["mean"]
    metric = spec["metric"]
    if mean_c <= 0:
        raise HandoffError(
            f"control {control.uri}: field 'tasks.{task}.offline.{control.served}.downstream_mean' is {mean_c:.6g}; "
            f"a relative effect on {metric} needs a positive control mean")
    absolute = mean_t - mean_c
    relative = absolute / mean_c
    p_c, alpha, power = float(ab["baseline_rate"]), float(ab["alpha"]), float(ab["power"])
    r = float(ab["traffic_split"])
    p_t = p_c * (1 + relative)
    if not 0 < p_t < 1:
        raise HandoffError(
            f"ab.baseline_rate {p_c:g} with the offline relative effect {relative:+.4g} of {task} {metric} gives a "
            f"treatment rate {p_t:.6g} outside (0, 1): lower the baseline rate or check the bundles")
    n = two_proportions(p_c, p_t, alpha=alpha, power=power, treatment_share=r)
    overlap = jaccard(set(control.ids), set(treatment.ids))
    assumptions = [
        f"The online primary metric '{ab['primary_metric']}' is a per-unit rate (a Bernoulli outcome per "
        f"randomisation unit) with baseline rate p_c = {p_c:g} in control.",
        f"The online relative lift equals the offline relative effect of the task metric: {task} {metric}, "
        f"{control.served} -> {treatment.served}, {mean_c:.4f} -> {mean_t:.4f} ({relative:+.2%}), so the treatment "
        f"rate is p_t = p_c x (1 {relative:+.4f}) = {p_t:.6g}.",
        "Units are independent and randomised at the unit level; the primary metric is measured on the "
        "randomised units.",
        f"Two-sided two-proportion z-test at alpha = {alpha:g}, normal approximation (pooled rate under H0, "
        "unpooled variances under H1), no continuity correction.",
        f"Power {power:g} holds for the lift above only; a smaller true lift needs more units (the page's curve).",
        "No sequential peeking: the test is read once, at a fixed horizon, when both arms have reached their "
        "sample sizes.",
        f"The traffic split r = {r:g} (treatment share) applies to the randomisation units: "
        f"{n.treatment:,} treatment and {n.control:,} control units.",
        f"Both arms serve the same entity universe: the Jaccard overlap of their entity ids is {overlap:.4f} "
        f"(ab.min_entity_overlap {float(ab['min_entity_overlap']):g}); entities outside the overlap are few "
        "enough not to matter online.",
    ]
    if relative < 0:
        assumptions.append("The treatment is worse than control offline: the two-sided test is powered to detect "
                           "the drop.")
    return {
        "schema": HANDOFF_SCHEMA,
        "created_at": created_at or _now(),
        "generator": {"code_version": __version__, "image": IMAGE},
        "control": _arm(control, task),
        "treatment": _arm(treatment, task),
        "task": {"name": task, "kind": spec["kind"], "metric": metric, "definition": spec["definition"],
                 "offline": {"control": off_c, "treatment": off_t}},
        "effect": {"absolute": absolute, "relative": relative, "treatment_seed_std": off_t["std"]},
        "primary_metric": {"name": ab["primary_metric"], "baseline_rate": p_c, "expected_treatment_rate": p_t,
                           "absolute_lift": p_t - p_c, "relative_lift": relative},
        "design": {"test": "two-proportion z-test", "sides": 2, "alpha": alpha, "power": power,
                   "h0_variance": "pooled", "continuity_correction": False, "sequential": False,
                   "traffic_split": {"control": round(1 - r, 12), "treatment": r}},
        "sample_size": {"control": n.control, "treatment": n.treatment, "total": n.total,
                        "total_exact": n.total_exact, "formula": FORMULA},
        "comparability": checks,
        "assumptions": assumptions,
    }


# -- rendering ---------------------------------------------------------------------------------


def sample_size_curve(doc: dict[str, Any], points: int = 60) -> tuple[np.ndarray, list[SampleSize]]:
    """Required sample sizes over relative lifts around the offline one (same sign, 1/5x to 5x)."""
    p_c, rel = doc["primary_metric"]["baseline_rate"], doc["primary_metric"]["relative_lift"]
    d = doc["design"]
    cap = (1 / p_c - 1) if rel > 0 else 1.0  # keep p_t inside (0, 1)
    hi = min(abs(rel) * 5, cap * 0.95)
    lifts = np.geomspace(min(abs(rel) / 5, hi / 2), hi, points) * math.copysign(1, rel)
    sizes = [two_proportions(p_c, p_c * (1 + x), d["alpha"], d["power"], d["traffic_split"]["treatment"])
             for x in lifts]
    return lifts, sizes


def effect_plot(doc: dict[str, Any]) -> bytes:
    """Units per arm against the relative lift, log-log, with the offline effect marked."""
    from reprflow.components.report.plots import plt, png

    lifts, sizes = sample_size_curve(doc)
    x = np.abs(lifts) * 100
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    s = doc["sample_size"]
    if s["control"] == s["treatment"] and doc["design"]["traffic_split"]["treatment"] == 0.5:
        ax.plot(x, [n.control for n in sizes], color="#1f77b4", label="per arm")
    else:
        ax.plot(x, [n.control for n in sizes], color="#1f77b4", label="control")
        ax.plot(x, [n.treatment for n in sizes], color="#ff7f0e", label="treatment")
    rel = abs(doc["primary_metric"]["relative_lift"]) * 100
    ax.axvline(rel, color="#2ca02c", linestyle="--", linewidth=1)
    ax.scatter([rel, rel], [s["control"], s["treatment"]], color="#2ca02c", zorder=3,
               label=f"offline effect {doc['effect']['relative']:+.2%}")
    ax.annotate(f"{max(s['control'], s['treatment']):,}", (rel, max(s["control"], s["treatment"])),
                textcoords="offset points", xytext=(6, 6), fontsize=8)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("|relative lift| of the primary metric (%)")
    ax.set_ylabel("units per arm")
    ax.set_title(f"Sample size for baseline {doc['primary_metric']['baseline_rate']:g}, alpha "
                 f"{doc['design']['alpha']:g}, power {doc['design']['power']:g}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return png(fig)


def _arm_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for role in ("control", "treatment"):
        a, o = doc[role], doc["task"]["offline"][role]
        rows.append([role, a["uri"], a["version_id"] or "(unpublished)", a["served_representation"],
                     f"{o['mean']:.4f}", f"{o['std']:.4f}", ", ".join(f"{v:.4f}" for v in o["per_seed"]),
                     f"{o['churn']:.4f}", f"{o['swap_mean']:.4f}", a["provenance"]["code_version"],
                     a["provenance"]["created_at"]])
    return rows


ARM_HEAD = ["arm", "bundle", "version", "served", "mean", "seed std", "per seed", "churn", "swap mean",
            "code version", "created at"]


def _key_numbers(doc: dict[str, Any]) -> list[tuple[str, str]]:
    s, d, pm, e = doc["sample_size"], doc["design"], doc["primary_metric"], doc["effect"]
    t = doc["task"]
    return [
        ("units per arm", f"control {s['control']:,}, treatment {s['treatment']:,}"),
        ("units in total", f"{s['total']:,}"),
        ("traffic split", f"control {d['traffic_split']['control']:g}, treatment {d['traffic_split']['treatment']:g}"),
        ("primary metric", f"{pm['name']}: baseline {pm['baseline_rate']:g}, expected treatment "
                           f"{pm['expected_treatment_rate']:.6g} ({pm['relative_lift']:+.2%})"),
        ("offline effect", f"{t['name']} {t['metric']}: {e['absolute']:+.4f} absolute, {e['relative']:+.2%} "
                           f"relative (treatment seed std {e['treatment_seed_std']:.4f})"),
        ("test", f"two-sided {d['test']}, alpha {d['alpha']:g}, power {d['power']:g}"),
    ]


def _check_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [[c["check"], "yes" if c["passed"] else "no", c["detail"]] for c in doc["comparability"]]


def render_markdown(doc: dict[str, Any]) -> str:
    """The handoff as Markdown: key numbers, arms, checks, assumptions."""
    lines = [f"# A/B handoff: {doc['treatment']['registry_name']}, task {doc['task']['name']}", "",
             f"Schema `{doc['schema']}`, created {doc['created_at']}.", ""]
    lines += [f"- **{k}**: {v}" for k, v in _key_numbers(doc)]
    lines += ["", "## Arms", "", markdown_table(ARM_HEAD, _arm_rows(doc))]
    lines += ["", "## Comparability checks", "", markdown_table(["check", "passed", "detail"], _check_rows(doc))]
    lines += ["", "## Assumptions", ""] + [f"- {a}" for a in doc["assumptions"]]
    lines += ["", "## Sample size formula", "", f"`{doc['sample_size']['formula']}`", ""]
    return "\n".join(lines)


def render_html(doc: dict[str, Any], figure: bytes) -> str:
    """A self-contained page: one inline PNG, no scripts, no external resources."""
    esc = html.escape

    keys = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _key_numbers(doc))
    assumptions = "".join(f"<li>{esc(a)}</li>" for a in doc["assumptions"])
    picture = img(figure, "units per arm against relative lift")
    title = f"A/B handoff: {doc['treatment']['registry_name']}, task {doc['task']['name']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
dt {{ font-weight: bold; float: left; clear: left; width: 10em; }} dd {{ margin-left: 11em; margin-bottom: 0.3em; }}
img {{ max-width: 100%; }} code {{ font-size: 0.85em; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>Schema <code>{esc(doc['schema'])}</code>, created {esc(doc['created_at'])}. The machine-readable
handoff is <code>handoff.json</code> next to this page.</p>
<dl>{keys}</dl>
<h2>Arms</h2>
<p>Offline {esc(doc['task']['metric'])} of task {esc(doc['task']['name'])} on each arm's served representation,
over its pretraining seeds.</p>
{html_table(ARM_HEAD, _arm_rows(doc))}
<h2>Sample size against the true lift</h2>
<p>Units per arm needed if the online lift differs from the offline effect (dashed line).</p>
{picture}
<p><code>{esc(doc['sample_size']['formula'])}</code></p>
<h2>Comparability checks</h2>
{html_table(["check", "passed", "detail"], _check_rows(doc))}
<h2>Assumptions</h2>
<ul>{assumptions}</ul>
</body></html>
"""


def write_handoff(doc: dict[str, Any], out_dir: str | Path) -> Path:
    """Validate, then write handoff.json, handoff.html and handoff.md into `out_dir`, all or nothing."""
    validate_handoff(doc)
    page, markdown = render_html(doc, effect_plot(doc)), render_markdown(doc)
    with atomic_dir(out_dir) as staging:
        write_json(staging / "handoff.json", doc)
        (staging / "handoff.html").write_text(page, encoding="utf-8")
        (staging / "handoff.md").write_text(markdown, encoding="utf-8")
    return Path(out_dir)
