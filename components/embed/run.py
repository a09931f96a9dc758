"""embed stage: export one seed's entity table in the fixed entity order, and collect the seeds.

An embedding artifact is a directory with `embeddings.npy` (n x d float32), `ids.json` (the n
entity ids, in the order of the items table) and `meta.json`. The collected embedding set has
`embeddings.npy` of shape (K, n, d), seeds sorted ascending, the same `ids.json` and metadata.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reprflow.components.common.artifacts import atomic_dir, load_npy, read_json, write_json
from reprflow.components.common.provenance import provenance
from reprflow.components.common.tables import read_items


def run_embed(model_dir: str, items_path: str, config: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Write the input table of a trained model as the entity embedding table."""
    started = time.perf_counter()
    model_meta = read_json(Path(model_dir) / "meta.json")
    table = load_npy(Path(model_dir) / "input.npy").astype(np.float32)
    ids = read_items(items_path)["item"].astype(str).tolist()
    if table.shape[0] != len(ids):
        raise ValueError(f"{model_dir}: model has {table.shape[0]} rows but the items table has {len(ids)}")
    meta = provenance(
        config,
        seed=model_meta["seed"],
        candidate=model_meta.get("candidate"),
        pretrain=model_meta.get("pretrain"),
        untrained_items=model_meta.get("untrained_items"),  # rows still random: items in no training pair
        shape=list(table.shape),
        inputs={"model": model_dir, "items": items_path},
        timings_s={"pretrain": model_meta["duration_s"], "embed": time.perf_counter() - started},
        pretrain_window=[model_meta["started_at"], time.time()],
    )
    with atomic_dir(out_dir) as out:
        np.save(out / "embeddings.npy", table)
        write_json(out / "ids.json", ids)
        write_json(out / "meta.json", meta)
    return meta


def run_collect(embedding_dirs: Sequence[str], config: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Stack per-seed tables into a (K, n, d) embedding set; all seeds must share the entity ids."""
    started = time.perf_counter()
    metas = [read_json(Path(d) / "meta.json") for d in embedding_dirs]
    order = np.argsort([m["seed"] for m in metas], kind="stable")
    dirs = [embedding_dirs[i] for i in order]
    metas = [metas[i] for i in order]
    seeds = [m["seed"] for m in metas]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate seeds in the collected embeddings: {seeds}")
    ids = read_json(Path(dirs[0]) / "ids.json")
    for d in dirs[1:]:
        if read_json(Path(d) / "ids.json") != ids:
            raise ValueError(f"{d}: entity ids differ from {dirs[0]}; cannot stack seeds")
    stack = np.stack([load_npy(Path(d) / "embeddings.npy") for d in dirs])
    # Seeds run in parallel: the fan-out's wall time, and the task time summed over seeds.
    windows = np.array([m["pretrain_window"] for m in metas])
    timings = {
        "pretrain": float(windows[:, 1].max() - windows[:, 0].min()),
        "pretrain_task_sum": float(sum(m["timings_s"]["pretrain"] + m["timings_s"]["embed"] for m in metas)),
        "collect": time.perf_counter() - started,
    }
    untrained = [m.get("untrained_items") for m in metas]
    meta = provenance(config, seeds=seeds, shape=list(stack.shape), inputs=list(dirs), timings_s=timings,
                      untrained_items=None if None in untrained else max(untrained))
    with atomic_dir(out_dir) as out:
        np.save(out / "embeddings.npy", stack)
        write_json(out / "ids.json", ids)
        write_json(out / "meta.json", meta)
    return meta
