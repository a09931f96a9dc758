"""pretrain stage: item2vec for one seed, from the ingest tables to a model artifact."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprflow.components.common.artifacts import atomic_dir, write_json
from reprflow.components.common.config import validate_config
from reprflow.components.common.provenance import provenance
from reprflow.components.common.stage import TORCH_THREADS_ENV
from reprflow.components.common.tables import read_interactions, read_items, vocabulary_rows
from reprflow.components.pretrain.item2vec import Baskets, Item2VecConfig, checkpoint_key, make_baskets, train

log = logging.getLogger(__name__)


def run_pretrain(
    interactions_path: str,
    items_path: str,
    seed: int,
    config: dict[str, Any],
    checkpoint_root: str,
    model_dir: str,
    candidate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one seed and write `model_dir/{input,output}.npy` and `meta.json`; returns the metadata.

    `candidate` ({"name": ..., and pretrain fields}) overrides the configured hyperparameters:
    model selection trains a grid of candidates this way. Checkpoints go to
    `checkpoint_root/<key>/seed-<seed>.pt`, the key naming data and hyperparameters, so a rerun
    of the same task (a retry, a new pipeline run) resumes; a `gs://bucket/prefix` root lets the
    rerun resume on another node.
    """
    started, started_at = time.perf_counter(), time.time()
    if os.environ.get(TORCH_THREADS_ENV):
        torch.set_num_threads(int(os.environ[TORCH_THREADS_ENV]))
    items = read_items(items_path)
    rows, item_index = vocabulary_rows(read_interactions(interactions_path), items)
    baskets: Baskets = make_baskets(rows["invoice"].astype(str).to_numpy(), item_index, len(items))
    overrides = {k: v for k, v in (candidate or {}).items() if k != "name"}
    config = validate_config(config | {"pretrain": config["pretrain"] | overrides}, f"candidate {candidate}")
    cfg = Item2VecConfig(**config["pretrain"])
    ckpt: str | Path | None = None
    if checkpoint_root:
        rel = f"{checkpoint_key(cfg, baskets, seed)}/seed-{seed}.pt"
        ckpt = f"{checkpoint_root.rstrip('/')}/{rel}" if checkpoint_root.startswith("gs://") else Path(checkpoint_root) / rel
    log.info("pretrain seed %d: %d items, %d basket events, checkpoint %s", seed, baskets.n_items, len(baskets.item), ckpt)
    result = train(baskets, cfg, seed, checkpoint=ckpt)
    meta = provenance(
        config,
        seed=seed,
        candidate=(candidate or {}).get("name"),
        pretrain=asdict(cfg),
        data_fingerprint=baskets.fingerprint(),
        inputs={"interactions": interactions_path, "items": items_path},
        steps=result.steps,
        resumed_from_step=result.resumed_from_step,
        epoch_loss=result.epoch_loss,
        pairs_per_second=result.pairs_per_second,
        device=result.device,
        untrained_items=result.untrained_items,
        duration_s=time.perf_counter() - started,
        started_at=started_at,
        finished_at=time.time(),
    )
    with atomic_dir(model_dir) as out:
        np.save(out / "input.npy", result.input)
        np.save(out / "output.npy", result.output)
        write_json(out / "meta.json", meta)
    return meta
