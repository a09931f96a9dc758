"""Provenance attached to every artifact: code version, image, config hash, inputs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reprflow.version import IMAGE, __version__


# Sections that say where a run keeps things and what is done with its results, not what it
# computes: the same run on another bucket, or prepared for another experiment, has the same hash.
OPERATIONAL_SECTIONS = ("cluster", "resources", "trigger", "retrain", "ab")


def config_hash(config: Any) -> str:
    """A short, order-independent hash of a JSON-serialisable configuration (operational sections excluded)."""
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k not in OPERATIONAL_SECTIONS}
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def provenance(config: Any, **extra: Any) -> dict[str, Any]:
    """Metadata for an artifact: code version and image plus whatever the stage adds."""
    return {"code_version": __version__, "image": IMAGE, "config_hash": config_hash(config), **extra}
