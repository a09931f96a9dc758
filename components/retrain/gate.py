"""The promotion gate: a retrained candidate replaces production only if every check passes.

Checks, each with its numbers in the report (the configuration's `retrain` section sets them):
- every task is defined as in production (same rows, labels and split): otherwise the offline
  metrics are not comparable and nothing is promoted;
- no task is worse than production by more than `max_regression_in_stds` times its seed spread,
  the larger of the two versions' standard deviations over pretraining seeds of the served
  representation: a drop within retrain noise is not a regression, one beyond it is;
- the served features moved little: the median relative change of the entities both versions know
  is at most `max_feature_drift`, so a model trained on production's features still reads them.
"""

from __future__ import annotations

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
        p, c = prod["offline"][rep], cand["offline"][rep]
        allowed = cfg["max_regression_in_stds"] * max(p["downstream_std"], c["downstream_std"])
        checks.append(_check(
            f"{task}: not worse than production", c["downstream_mean"] >= p["downstream_mean"] - allowed,
            f"{task} {prod['metric']} on {rep}: candidate {c['downstream_mean']:.4f} ± {c['downstream_std']:.4f}, "
            f"production {p['downstream_mean']:.4f} ± {p['downstream_std']:.4f}; a drop of at most {allowed:.4f} "
            f"({cfg['max_regression_in_stds']:g} x the larger seed std) is allowed",
        ))
    moved = drift["representations"][rep]["relative_change_median"]
    checks.append(_check(
        f"{rep} features: drift under the bound", moved <= cfg["max_feature_drift"],
        f"{rep} features of the {drift['entities']['common']} entities both versions know moved by a median "
        f"{moved:.3f} (relative); the bound is {cfg['max_feature_drift']:g}",
    ))
    return {"promote": all(c["passed"] for c in checks), "checks": checks,
            "reasons": [c["detail"] for c in checks if not c["passed"]]}
