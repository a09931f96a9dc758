"""package stage: a run's artifacts as a servable bundle (see bundle.py)."""

from __future__ import annotations

from typing import Any

from reprflow.components.common.tables import read_interactions, read_items
from reprflow.components.package.bundle import build_bundle


def run_package(
    embedding_set_dir: str, featurizer_dir: str, results_path: str, interactions_path: str, items_path: str,
    dataset_stats: dict[str, Any], config: dict[str, Any], bundle_dir: str,
) -> dict[str, Any]:
    return build_bundle(embedding_set_dir, featurizer_dir, results_path, read_interactions(interactions_path),
                        read_items(items_path), dataset_stats, config, bundle_dir)
