"""Provenance attached to every artifact: code version, image, config hash, inputs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reprflow.version import IMAGE, __version__


def config_hash(config: Any) -> str:
    """A short, order-independent hash of a JSON-serialisable configuration."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def provenance(config: Any, **extra: Any) -> dict[str, Any]:
    """Metadata for an artifact: code version and image plus whatever the stage adds."""
    return {"code_version": __version__, "image": IMAGE, "config_hash": config_hash(config), **extra}
