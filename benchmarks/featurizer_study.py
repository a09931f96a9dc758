"""Which FPR variant keeps swap stability at no accuracy cost? The featurizer family
(components/featurize/variants.py) on a finished run's embedding set, next to raw embeddings.

A run with `featurize.compare_variants: true` reports the same in its own summary and page; this
script scores a run that did not. Prints a table and writes benchmarks/results/featurizer_study.json.

    python benchmarks/featurizer_study.py --run runs/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import write_json

from reprflow.components.common.artifacts import load_npy, read_json
from reprflow.components.common.config import load_config
from reprflow.components.common.tables import read_interactions, read_items
from reprflow.components.common.tasks import build_tasks, training_items
from reprflow.components.featurize.variants import score_tables, variant_study


def latest(run: Path, pattern: str) -> Path:
    found = sorted(run.glob(f"artifacts/*/{pattern}"))
    if not found:
        raise SystemExit(f"{run}: no {pattern} under artifacts/ (run `reprflow run` first)")
    return found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo", type=Path, help="output dir of a finished `reprflow run`")
    parser.add_argument("--config", default="configs/online_retail.yaml", type=Path)
    args = parser.parse_args()
    config = load_config(args.config)
    embedding_set = latest(args.run, "collect-embeddings/embedding_set")
    tables, ids = load_npy(embedding_set / "embeddings.npy"), read_json(embedding_set / "ids.json")
    ingest = latest(args.run, "ingest")
    items = read_items(str(ingest / "items"))
    tasks = build_tasks(read_interactions(str(ingest / "interactions")), items, config)
    results = {"raw": score_tables(tables, tasks),
               **variant_study(tables, ids, items["baskets"].to_numpy(), config["featurize"]["anchors"], tasks,
                                 training_items(items, config))}
    names = [t.name for t in tasks]
    print(f"\n{'variant':40s}" + "".join(f"{t:>34s}" for t in names))
    print(f"{'':40s}" + "   retrained  churn  swapped        " * len(names))
    for name, per_task in results.items():
        cells = "".join(f"{per_task[t]['downstream_mean']:>12.3f}{per_task[t]['churn']:>7.3f}{per_task[t]['swap_mean']:>9.3f}      "
                        for t in names)
        print(f"{name:40s}{cells}")
    print(f"\nwrote {write_json('featurizer_study', {'run': str(args.run), 'results': results})}")


if __name__ == "__main__":
    main()
