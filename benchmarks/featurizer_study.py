"""Which FPR variant keeps swap stability at no accuracy cost? A study on a finished run's
embedding set (the real data), every variant scored the way the pipeline scores representations.

For each variant (kernel, anchor count m, anchor rule, seed-spread block, quantile bins) and each
task: single-seed FPR (one model per seed on S_k; swap = served another seed's S_k) and the
seed-mean featurizer (leave-one-seed-out), next to raw embeddings as the reference. Prints a
table and writes benchmarks/results/featurizer_study.json.

    python benchmarks/featurizer_study.py --run runs/demo
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from reprflow.components.common.artifacts import load_npy, read_json
from reprflow.components.common.config import load_config
from reprflow.components.common.tables import read_interactions, read_items
from reprflow.components.common.tasks import build_tasks
from reprflow.components.downstream_train.models import seed_study
from reprflow.components.featurize.fpr import FPRFeaturizer
from reprflow.components.featurize.strategies import leave_one_out

VARIANTS = {
    "cosine m=256": {},
    "dot m=256": {"kernel": "dot"},
    "rbf m=256": {"kernel": "rbf"},
    "cosine m=64": {"m": 64},
    "cosine m=1024": {"m": 1024},
    "cosine m=256 k-means++": {"anchor_rule": "kmeans++"},
    "cosine m=256 +spread": {"seed_spread": True},
    "cosine m=256 10 bins": {"quantile_bins": 10},
}


def latest(run: Path, pattern: str) -> Path:
    found = sorted(run.glob(f"artifacts/*/{pattern}"))
    if not found:
        raise SystemExit(f"{run}: no {pattern} under artifacts/ (run `reprflow run` first)")
    return found[-1]


def study(run: Path, config_path: Path) -> dict:
    config = load_config(config_path)
    embedding_set = latest(run, "collect-embeddings/embedding_set")
    tables, ids = load_npy(embedding_set / "embeddings.npy"), read_json(embedding_set / "ids.json")
    ingest = latest(run, "ingest")
    items, interactions = read_items(str(ingest / "items")), read_interactions(str(ingest / "interactions"))
    tasks = build_tasks(interactions, items, config)
    counts = items["baskets"].to_numpy()

    def evaluate(reps: np.ndarray) -> dict:
        out = {}
        for task in tasks:
            feats = np.stack([task.features(t) for t in reps])
            r = seed_study(task.kind, feats[:, task.train], task.y[task.train], feats[:, ~task.train], task.y[~task.train])
            out[task.name] = {k: r[k] for k in ("downstream_mean", "downstream_std", "churn", "swap_mean")}
        return out

    results = {"raw": evaluate(tables)}
    for name, v in VARIANTS.items():
        started = time.perf_counter()
        feat = FPRFeaturizer.fit(ids, counts, v.get("m", 256), v.get("kernel", "cosine"), tables=tables,
                                 anchor_rule=v.get("anchor_rule", "frequency"), seed_spread=v.get("seed_spread", False),
                                 quantile_bins=v.get("quantile_bins", 0))
        # Single-seed FPR has no spread block; binning and spread are properties of the seed mean.
        results[f"{name} / single seed"] = evaluate(feat.transform_seeds(tables, ids)) if not (
            v.get("seed_spread") or v.get("quantile_bins")) else None
        results[f"{name} / seed mean"] = evaluate(leave_one_out(tables, lambda t: feat.transform(t, ids)))
        print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
    return {k: v for k, v in results.items() if v is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo", type=Path, help="output dir of a finished `reprflow run`")
    parser.add_argument("--config", default="configs/online_retail.yaml", type=Path)
    args = parser.parse_args()
    results = study(args.run, args.config)
    tasks = list(results["raw"])
    print(f"\n{'variant':40s}" + "".join(f"{t:>34s}" for t in tasks))
    print(f"{'':40s}" + "   retrained  churn  swapped        " * len(tasks))
    for name, per_task in results.items():
        cells = "".join(f"{per_task[t]['downstream_mean']:>12.3f}{per_task[t]['churn']:>7.3f}{per_task[t]['swap_mean']:>9.3f}      "
                        for t in tasks)
        print(f"{name:40s}{cells}")
    out = Path(__file__).parent / "results" / "featurizer_study.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"run": str(args.run), "results": results}, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
