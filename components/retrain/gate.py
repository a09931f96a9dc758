"""The promotion gate: a retrained candidate replaces production only if every check passes.

Checks, each with its numbers in the report (the configuration's `retrain` section sets them):
- every task is defined as in production (same rows, labels and split): otherwise the offline
  metrics are not comparable and nothing is promoted;
- no task is worse than production by more than `max_regression_in_stds` times its seed spread:
  each version's model on its own served features, on the same test rows (the entities both
  versions know, production's labels), against the larger of the two versions' standard
  deviations over pretraining seeds; a drop within retrain noise is not a regression;
- the served features moved little: the median relative change of the entities both versions know
  is at most `max_feature_drift`, so a model trained on production's features still reads them.
"""

from __future__ import annotations

import math
from typing import Any

from reprflow.components.package.bundle import Bundle


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "passed": bool(passed), "detail": detail}


def gate(production: Bundle, candidate: Bundle, drift: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """{"promote": bool, "checks": [...], "reasons": [the failed checks' details]}."""
    cfg = config["retrain"]
    rep = cfg["representation"]
    checks = []
    for task, prod in production.meta["tasks"].items():
        cand = candidate.meta["tasks"].get(task)
        if cand is None or cand["definition"] != prod["definition"]:
            differing = "missing" if cand is None else ", ".join(
                k for k in sorted(set(prod["definition"]) | set(cand["definition"]))
                if prod["definition"].get(k) != cand["definition"].get(k))
            checks.append(_check(f"{task}: defined as in production", False,
                                 f"{task}: the candidate's task differs from production's ({differing})"))
            continue
        same_rows = drift["production_model"][task][rep]
        p, c = same_rows["metric_production"], same_rows["metric_candidate"]
        stds = prod["offline"][rep]["downstream_std"], cand["offline"][rep]["downstream_std"]
        if not all(math.isfinite(s) for s in stds):  # max() would drop a NaN or allow any drop
            checks.append(_check(f"{task}: not worse than production", False,
                                 f"{task}: the seed std on {rep} is not a finite number (production {stds[0]}, "
                                 f"candidate {stds[1]}), so no allowed drop can be set"))
            continue
        std = max(stds)
        allowed = cfg["max_regression_in_stds"] * std
        checks.append(_check(
            f"{task}: not worse than production", c >= p - allowed,
            f"{task} {prod['metric']} on {rep}, same {same_rows['n_test']} test rows: candidate {c:.4f}, production "
            f"{p:.4f}; a drop of at most {allowed:.4f} ({cfg['max_regression_in_stds']:g} x the larger seed std "
            f"{std:.4f}) is allowed",
        ))
    moved = drift["representations"][rep]["relative_change_median"]
    checks.append(_check(
        f"{rep} features: drift under the bound", moved <= cfg["max_feature_drift"],
        f"{rep} features of the {drift['entities']['common']} entities both versions know moved by a median "
        f"{moved:.3f} (relative); the bound is {cfg['max_feature_drift']:g}",
    ))
    return {"promote": all(c["passed"] for c in checks), "checks": checks,
            "reasons": [c["detail"] for c in checks if not c["passed"]]}
