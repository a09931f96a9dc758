"""featurize stage: fit FPR on the embedding set and write every representation for comparison.

Outputs:
- featurizer/: `featurizer.json` (anchors, kernel) and `meta.json`;
- representations/: one (K, n, D) float32 array per representation, `ids.json`, `meta.json`:
  raw (each seed's embeddings), aligned (raw rotated onto seed 0's by Procrustes on the anchors),
  fpr (each seed's kernel to the anchors, S_k), fpr_seedmean (the fitted featurizer applied to
  all seeds but one: the seed-averaged features as retrained with K-1 seeds) and concat (all
  seeds but one side by side). The seed ensemble needs no array of its own: downstream-train
  builds it from raw.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from reprflow.components.common.artifacts import atomic_dir, load_npy, read_json, write_json
from reprflow.components.common.errors import DataError
from reprflow.components.common.provenance import provenance
from reprflow.components.common.tables import read_items
from reprflow.components.common.tasks import training_items
from reprflow.components.featurize.fpr import FPRFeaturizer
from reprflow.components.featurize.strategies import align_to_reference, concat, leave_one_out

REPRESENTATIONS = ("raw", "aligned", "fpr", "fpr_seedmean", "concat")


def run_featurize(
    embedding_set_dir: str, items_path: str, config: dict[str, Any], featurizer_dir: str, representations_dir: str,
    reference_featurizer: str | None = None,
) -> dict[str, Any]:
    """Fit the featurizer (or, with `reference_featurizer`, a featurizer.json, reuse it: a retrain is
    featurized against production's anchors, kernel and bins) and write every representation."""
    started = time.perf_counter()
    tables = load_npy(Path(embedding_set_dir) / "embeddings.npy")
    ids = read_json(Path(embedding_set_dir) / "ids.json")
    set_meta = read_json(Path(embedding_set_dir) / "meta.json")
    items = read_items(items_path)
    if items["item"].astype(str).tolist() != ids:
        raise ValueError(f"{embedding_set_dir}: entity ids differ from the items table {items_path}")
    cfg = config["featurize"]
    if reference_featurizer is None:
        featurizer = FPRFeaturizer.fit(
            ids, items["baskets"].to_numpy(), min(cfg["anchors"], len(ids)), cfg["kernel"], tables=tables,
            anchor_rule=cfg["anchor_rule"], seed_spread=cfg["seed_spread"], quantile_bins=cfg["quantile_bins"],
            fit_rows=training_items(items, config),
        )
    else:
        featurizer = FPRFeaturizer.load(reference_featurizer)
        missing = sorted(set(featurizer.anchors) - set(ids))
        if missing:
            raise DataError(f"{reference_featurizer}: {len(missing)} production anchor(s) are not among the new "
                            f"entities, e.g. item {missing[0]!r}; retrain on data that still contains them")
    reps = {
        "raw": tables,
        "aligned": align_to_reference(tables, featurizer.anchor_rows(ids)),
        "fpr": featurizer.transform_seeds(tables, ids),
        "fpr_seedmean": leave_one_out(tables, lambda t: featurizer.transform(t, ids)),
        "concat": leave_one_out(tables, concat),
    }
    meta = provenance(
        config,
        seeds=set_meta["seeds"],
        featurizer={"kernel": featurizer.kernel, "anchors": len(featurizer.anchors), "seed_spread": featurizer.seed_spread,
                    "quantile_bins": len(featurizer.bin_edges[0]) + 1 if featurizer.bin_edges else 0,
                    "reference": reference_featurizer},
        shapes={k: list(v.shape) for k, v in reps.items()},
        inputs={"embedding_set": embedding_set_dir, "items": items_path},
        timings_s={**set_meta["timings_s"], "featurize": time.perf_counter() - started},
    )
    with atomic_dir(featurizer_dir) as out:
        write_json(out / "featurizer.json", featurizer.to_dict())
        write_json(out / "meta.json", meta)
    with atomic_dir(representations_dir) as out:
        for name, array in reps.items():
            np.save(out / f"{name}.npy", np.ascontiguousarray(array, dtype=np.float32))
        write_json(out / "ids.json", ids)
        write_json(out / "meta.json", meta)
    return meta


def load_representations(representations_dir: str) -> tuple[dict[str, np.ndarray], list[str], dict]:
    """The (K, n, D) arrays by name, the entity ids and the metadata of a representations artifact."""
    root = Path(representations_dir)
    reps = {name: load_npy(root / f"{name}.npy") for name in REPRESENTATIONS}
    return reps, read_json(root / "ids.json"), read_json(root / "meta.json")
