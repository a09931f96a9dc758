"""ab-prep stage: two bundles in, an experiment handoff (json, html, md) out, or a one-line refusal."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from reprflow.components.ab_prep.bundle import load_bundle
from reprflow.components.ab_prep.comparability import check_comparability
from reprflow.components.ab_prep.handoff import build_handoff, write_handoff
from reprflow.components.common.config import validate_config

log = logging.getLogger(__name__)


def run_ab_prep(
    control_dir: str | Path,
    treatment_dir: str | Path,
    config: dict[str, Any],
    out_dir: str | Path,
    control_uri: str | None = None,
    treatment_uri: str | None = None,
) -> dict[str, Any]:
    """Read both bundles, refuse incomparable arms, size the test, write `out_dir/handoff.{json,html,md}`.

    `config` is a run configuration (its `ab` section is used); `*_uri` are the registry version
    URIs the bundles were fetched from ('' or None for local directories). Raises BundleError
    (a malformed bundle: file, field, value), NotComparable (every failing check) or HandoffError;
    on any error nothing is written. Returns the handoff document.
    """
    ab = validate_config(config, "config")["ab"]
    task = ab["task"]
    control = load_bundle(control_dir, "control", control_uri or None, task)
    treatment = load_bundle(treatment_dir, "treatment", treatment_uri or None, task)
    checks = check_comparability(control, treatment, task, float(ab["min_entity_overlap"]))
    doc = build_handoff(control, treatment, ab, checks)
    write_handoff(doc, out_dir)
    s = doc["sample_size"]
    log.info("handoff %s: %s vs %s, task %s, offline effect %+.2f%%, %d + %d units", out_dir, control.uri,
             treatment.uri, task, 100 * doc["effect"]["relative"], s["control"], s["treatment"])
    return doc
