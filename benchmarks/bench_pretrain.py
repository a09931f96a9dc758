"""item2vec pretraining: reprflow's PyTorch trainer against gensim's Word2Vec on the same baskets.

What is measured
    Both train skip-gram with negative sampling on the baskets of the Online Retail data (the
    pipeline's own ingest and vocabulary), with the same dimension, window, negatives (unigram^0.75)
    and epochs, one seed, on this machine's cores (torch threads = gensim workers = cores):

    * ours: ``reprflow.components.pretrain.item2vec.train`` (every item pair within `window`
      positions of a basket shuffled each epoch, both directions; SparseAdam; batch 4096);
    * gensim: ``Word2Vec(sg=1, hs=0, negative, window, shrink_windows=False, sample=0,
      min_count=1)`` on the same baskets, shuffled once, so it visits exactly the same pairs per
      epoch (no window shrinking, no frequent-item downsampling); its own learning-rate schedule.

    Speed: pairs per second = pairs per epoch x epochs / training wall time (gensim's vocabulary
    scan excluded). Quality: the pipeline's downstream tasks (product type accuracy, log-price R^2,
    repeat-purchase AUC; the same models, splits and test sets as ``reprflow run``) trained on each
    table, the sequential proxy (HR@10 of the mean-history dot product, no training), and the
    k-NN overlap@10 between the two tables (how much they agree on item neighbourhoods).

gensim is a benchmark-only dependency: ``pip install gensim==4.4.0``.

Run: ``python benchmarks/bench_pretrain.py`` (full data, d = 64, window 5, 5 epochs) or ``--quick``
(60,000 rows, 2 epochs). Results go to ``benchmarks/results/bench_pretrain.json``
(``bench_pretrain_quick.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import print_table, write_result
from reprflow.components.common.config import load_config
from reprflow.components.common.tables import vocabulary_rows
from reprflow.components.common.tasks import build_tasks
from reprflow.components.downstream_train.models import make_model, predict, score
from reprflow.components.downstream_train.next_item import next_item_task
from reprflow.components.evaluate_predictability.metrics.sequential_proxy import sequential_proxy
from reprflow.components.evaluate_predictability.metrics.stability import knn_overlap
from reprflow.components.ingest.ingest import ingest
from reprflow.components.pretrain.item2vec import Baskets, Item2VecConfig, make_baskets, pairs_per_epoch, train

REPO = Path(__file__).resolve().parents[1]


def basket_sentences(baskets: Baskets, seed: int) -> list[list[str]]:
    """Each basket's items as a list of tokens, shuffled once (gensim reads them in this order)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(baskets.item)), baskets.basket))
    items, starts = baskets.item[order], np.flatnonzero(np.diff(baskets.basket[order], prepend=-1))
    return [[str(i) for i in chunk] for chunk in np.split(items, starts[1:])]


def train_gensim(sentences: list[list[str]], n_items: int, cfg: Item2VecConfig, seed: int, workers: int):
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=cfg.dim, window=cfg.window, negative=cfg.negatives, ns_exponent=0.75, sg=1,
                     hs=0, min_count=1, sample=0, shrink_windows=False, seed=seed, workers=workers)
    model.build_vocab(sentences)
    started = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=cfg.epochs)
    seconds = time.perf_counter() - started
    table = np.zeros((n_items, cfg.dim), dtype=np.float32)
    for token, index in model.wv.key_to_index.items():
        table[int(token)] = model.wv.vectors[index]
    return table, seconds


def quality(table: np.ndarray, tasks: list, next_item) -> dict[str, float]:
    out = {}
    for task in tasks:
        x = task.features(table)
        model = make_model(task.kind).fit(x[task.train], task.y[task.train])
        out[f"{task.name} ({task.metric})"] = score(task.kind, task.y[~task.train], predict(model, task.kind, x[~task.train]))
    out["next item proxy HR@10"] = sequential_proxy(table, next_item.test)["hr_at_10"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60,000 rows, 2 epochs")
    parser.add_argument("--config", default=str(REPO / "configs" / "online_retail.yaml"))
    parser.add_argument("--data", default=None, help="interactions file (default: the config's data.uri)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    uri = args.data or str((REPO / config["data"]["uri"]).resolve())  # the config is relative to the repo root
    max_rows = 60_000 if args.quick else None
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)

    data = ingest(uri, config["data"]["min_item_count"], max_rows)
    rows, item_index = vocabulary_rows(data.interactions, data.items)
    baskets = make_baskets(rows["invoice"].astype(str).to_numpy(), item_index, len(data.items))
    epochs = args.epochs or (2 if args.quick else config["pretrain"]["epochs"])
    cfg = Item2VecConfig(**{**config["pretrain"], "epochs": epochs, "device": "cpu"})
    pairs = pairs_per_epoch(baskets, cfg.window) * epochs
    print(f"pretrain benchmark: {baskets.n_items} items, {len(np.unique(baskets.basket))} baskets, "
          f"{pairs:,} pairs over {epochs} epochs, d={cfg.dim}, window={cfg.window}, negatives={cfg.negatives}, "
          f"{threads} threads", flush=True)

    result = train(baskets, cfg, args.seed, progress=sys.stderr.isatty())
    ours_s = pairs / result.pairs_per_second
    print(f"  ours:   {ours_s:.1f} s, {result.pairs_per_second:,.0f} pairs/s", flush=True)
    gensim_table, gensim_s = train_gensim(basket_sentences(baskets, args.seed), baskets.n_items, cfg, args.seed, threads)
    print(f"  gensim: {gensim_s:.1f} s, {pairs / gensim_s:,.0f} pairs/s", flush=True)

    tasks = build_tasks(data.interactions, data.items, config)
    d = config["downstream"]
    next_item = next_item_task(data.interactions, data.items, d["test_fraction"], d["split_seed"])
    ours_q, gensim_q = quality(result.input, tasks, next_item), quality(gensim_table, tasks, next_item)
    overlap = knn_overlap(result.input, gensim_table, k=10)

    rows_out = [
        ("workload", f"{baskets.n_items} items, {pairs:,} pairs ({epochs} epochs), d={cfg.dim}, window={cfg.window}, "
                     f"negatives={cfg.negatives}, {threads} CPU threads"),
        ("ours: wall time / pairs per s", f"{ours_s:.1f} s / {pairs / ours_s:,.0f}"),
        ("gensim: wall time / pairs per s", f"{gensim_s:.1f} s / {pairs / gensim_s:,.0f}"),
        ("speed ratio (ours / gensim)", f"{gensim_s / ours_s:.2f}x"),
        *[(f"{k}: ours / gensim", f"{ours_q[k]:.4f} / {gensim_q[k]:.4f}") for k in ours_q],
        ("k-NN overlap@10, ours vs gensim", f"{overlap:.3f}"),
    ]
    print_table("item2vec: reprflow (PyTorch) vs gensim Word2Vec, same baskets", rows_out)
    write_result("bench_pretrain", args.quick, {
        "workload": {"items": baskets.n_items, "pairs_per_epoch": pairs // epochs, "epochs": epochs,
                     "dim": cfg.dim, "window": cfg.window, "negatives": cfg.negatives, "threads": threads,
                     "rows": len(data.interactions)},
        "ours": {"seconds": ours_s, "pairs_per_second": pairs / ours_s, "device": result.device,
                 "epoch_loss": result.epoch_loss, "quality": ours_q},
        "gensim": {"seconds": gensim_s, "pairs_per_second": pairs / gensim_s, "quality": gensim_q},
        "speed_ratio_ours_over_gensim": gensim_s / ours_s,
        "knn_overlap_at_10_between": overlap,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
