"""Whether two bundles can be the arms of one experiment; every refusal says why, with the values.

Checks, in order (each a {"check", "passed", "detail"}):

- distinct_versions: control and treatment are not the same version (same URI, same registry name
  and version id, same directory, or identical bundle.json).
- entity_overlap: Jaccard overlap |C & T| / |C | T| of the two `embeddings/ids.json` id sets is at
  least `min_entity_overlap`: both arms serve (nearly) the same entity universe.
- task_definition: the chosen task exists in both bundles with the same kind, metric and
  definition (every field of `definition`, compared as JSON values).
- offline_effect: the treatment's offline metric for the task on its served representation is
  outside its own seed noise of the control's: |mean_t - mean_c| > std_t, std_t the standard
  deviation of the treatment's per-seed metric (`downstream_std`). Skipped when the task is
  missing (task_definition already fails).
"""

from __future__ import annotations

import json
from typing import Any

from reprflow.components.ab_prep.bundle import Bundle
from reprflow.components.common.errors import ReprflowError


class NotComparable(ReprflowError):
    """The two bundles cannot be compared in an experiment; the message lists every failing check."""

    def __init__(self, message: str, checks: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.checks = checks


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    text = json.dumps(v, sort_keys=True)
    return text if len(text) <= 100 else text[:97] + "..."


def jaccard(a: set[str], b: set[str]) -> float:
    """|A & B| / |A | B| (1.0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _diff(c: Any, t: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Fields where two JSON values differ, as (dotted path, control value, treatment value)."""
    if isinstance(c, dict) and isinstance(t, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(c) | set(t)):
            if key not in c or key not in t:
                out.append((f"{path}.{key}", c.get(key, "<absent>"), t.get(key, "<absent>")))
            else:
                out.extend(_diff(c[key], t[key], f"{path}.{key}"))
        return out
    same = type(c) is type(t) and c == t or (
        isinstance(c, (int, float)) and isinstance(t, (int, float)) and not isinstance(c, bool)
        and not isinstance(t, bool) and c == t)
    return [] if same else [(path, c, t)]


def _same_version(c: Bundle, t: Bundle) -> str | None:
    if c.uri.rstrip("/") == t.uri.rstrip("/"):
        return f"both name {c.uri}"
    if c.version_id is not None and c.version_id == t.version_id and c.name == t.name:
        return f"both are version {c.version_id} of {c.name!r}"
    if c.directory.resolve() == t.directory.resolve():
        return f"both are the directory {c.directory.resolve()}"
    if c.doc == t.doc:
        return "their bundle.json files are identical (same content and provenance)"
    return None


def comparability_checks(control: Bundle, treatment: Bundle, task: str, min_entity_overlap: float
                         ) -> list[dict[str, Any]]:
    """Every check's result, passing or not (see the module docstring)."""
    c, t = control, treatment
    checks: list[dict[str, Any]] = []

    same = _same_version(c, t)
    checks.append({"check": "distinct_versions", "passed": same is None, "detail": (
        f"control {c.uri} and treatment {t.uri} are the same version: {same}" if same else
        f"control {c.uri} (version {c.version_id}) and treatment {t.uri} (version {t.version_id}) "
        f"are different versions")})

    ids_c, ids_t = set(c.ids), set(t.ids)
    overlap, shared = jaccard(ids_c, ids_t), len(ids_c & ids_t)
    ok = overlap >= min_entity_overlap
    checks.append({"check": "entity_overlap", "passed": ok, "detail": (
        f"{'entity universes match' if ok else 'different entity universes'}: Jaccard overlap of the "
        f"entity ids {overlap:.4f} {'>=' if ok else '<'} min_entity_overlap {min_entity_overlap:g} "
        f"(control {c.uri}: {len(ids_c)} ids, treatment {t.uri}: {len(ids_t)} ids, {shared} shared)")})

    missing = [b for b in (c, t) if task not in b.doc["tasks"]]
    if missing:
        detail = "; ".join(
            f"{b.role} {b.uri} has no task {task!r} (bundle.json field 'tasks' has: "
            f"{', '.join(sorted(b.doc['tasks'])) or 'none'})" for b in missing)
        checks.append({"check": "task_definition", "passed": False, "detail": detail})
        return checks

    tc, tt = c.doc["tasks"][task], t.doc["tasks"][task]
    diffs = [(f"tasks.{task}.{f}", tc[f], tt[f]) for f in ("kind", "metric") if tc[f] != tt[f]]
    diffs += _diff(tc["definition"], tt["definition"], f"tasks.{task}.definition")
    checks.append({"check": "task_definition", "passed": not diffs, "detail": (
        f"task {task!r} differs between control {c.uri} and treatment {t.uri}: " + "; ".join(
            f"field '{path}' is {_fmt(vc)} in control and {_fmt(vt)} in treatment" for path, vc, vt in diffs)
        if diffs else
        f"task {task!r} has the same kind ({tc['kind']}), metric ({tc['metric']}) and definition in both bundles")})

    oc, ot = tc["offline"][c.served], tt["offline"][t.served]
    mean_c, mean_t, std_t = float(oc["downstream_mean"]), float(ot["downstream_mean"]), float(ot["downstream_std"])
    gap = abs(mean_t - mean_c)
    ok = gap > std_t
    metric = tc["metric"]
    checks.append({"check": "offline_effect", "passed": ok, "detail": (
        f"treatment {t.uri} {task} {metric} ({t.served}) mean {mean_t:.6g} is "
        f"{'outside' if ok else 'within'} its own seed noise of control {c.uri} ({c.served}) mean "
        f"{mean_c:.6g}: |difference| {gap:.6g} {'>' if ok else '<='} treatment seed std {std_t:.6g}")})
    return checks


def check_comparability(control: Bundle, treatment: Bundle, task: str, min_entity_overlap: float
                        ) -> list[dict[str, Any]]:
    """The checks' results when all pass; otherwise NotComparable with every failing reason in one line."""
    checks = comparability_checks(control, treatment, task, min_entity_overlap)
    failed = [ch for ch in checks if not ch["passed"]]
    if failed:
        raise NotComparable(
            f"control {control.uri} and treatment {treatment.uri} are not comparable for task {task!r}: "
            + " | ".join(f"{ch['check']}: {ch['detail']}" for ch in failed), checks)
    return checks
