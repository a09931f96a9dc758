"""`reprflow retrain` on one machine: production from the first months of the data, the rest
arriving as a new batch, then the retrain pipeline under kfp.local.

    1. split: rows before `retrain.production_until` -> DIR/data/production.csv.gz; the rest ->
       DIR/data/incoming/<date>/part-0.csv.gz plus the _SUCCESS marker a producer would write;
    2. bootstrap: with no current version in the registry, the representation pipeline runs on the
       production file and its bundle is published as the first production version;
    3. retrain: the retrain pipeline reads production's data and the new batch, compares, gates and
       promotes (or not). The registry is a local directory here, a gs:// prefix on a cluster.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from reprflow.components.common.errors import DataError
from reprflow.components.common.registry import Registry
from reprflow.components.common.storage import local_copy
from reprflow.components.ingest.ingest import clean_rows, parse_dates, read_table
from reprflow.pipelines.local_runner import PipelineFailed, run_locally
from reprflow.pipelines.representation import representation_pipeline
from reprflow.pipelines.retrain import retrain_pipeline

log = logging.getLogger(__name__)


def split_by_time(source: str, until: str, max_rows: int, out_dir: Path) -> tuple[Path, Path]:
    """Write the rows before `until` and the rest as two inputs; returns (production file, batch folder)."""
    with local_copy(source) as path:
        df = read_table(path, source, max_rows or None)
    clean_rows(df, source)  # every value must parse: an error names the user's file and line, not the split's
    when = parse_dates(source, df)
    cut = pd.Timestamp(until)
    before = (when < cut).to_numpy()
    if before.all() or not before.any():
        raise DataError(f"{source}: field retrain.production_until {until} leaves no rows on one side "
                        f"(the data spans {when.min()} to {when.max()})")
    production = out_dir / "production.csv.gz"
    batch = out_dir / "incoming" / until
    batch.mkdir(parents=True, exist_ok=True)
    df[before].to_csv(production, index=False)
    df[~before].to_csv(batch / "part-0.csv.gz", index=False)
    (batch / "_SUCCESS").touch()
    log.info("split %s at %s: %d production rows, %d new rows in %s", source, until, before.sum(), (~before).sum(), batch)
    return production, batch


def bootstrap(config: dict[str, Any], production_data: Path, out: Path, registry: str, checkpoints: str) -> dict:
    """Train, package and publish the first production version from `production_data`, the rows of
    the configured data before `retrain.production_until`."""
    try:
        _, seconds = run_locally(
            representation_pipeline(None), out / "artifacts", data_uri=str(production_data),
            config=config | {"data": config["data"] | {"uri": str(production_data)}}, seeds=config["seeds"],
            checkpoint_root=checkpoints, registry=registry, publish=True)
    except PipelineFailed as exc:
        raise PipelineFailed(f"bootstrap from the rows of {config['data']['uri']} before "
                             f"{config['retrain']['production_until']}: {exc}") from exc
    name, reg = config["retrain"]["name"], Registry(registry)
    version = reg.read_pointer(name).version
    log.info("bootstrap: production %s in %.0f s", version, seconds)
    return {"name": name, "version": version, "uri": reg.version_uri(name, version), "seconds": seconds}


def retrain_locally(config: dict[str, Any], out: Path, registry: str, data: str | None, checkpoints: str) -> dict:
    """Run steps 1-3 (1 and 2 only without `data`); returns what happened, for the command line.

    If it fails before a bootstrap has published anything, the split it wrote (DIR/data) is removed;
    a published bootstrap keeps it, as its production data, and a second call goes on from there.
    """
    name = config["retrain"]["name"]
    happened: dict[str, Any] = {"registry": registry}
    split_dir = out / "data"
    created = data is None and not split_dir.exists()
    try:
        if data is None:
            production_data, batch = split_by_time(config["data"]["uri"], config["retrain"]["production_until"],
                                                   config["data"]["max_rows"], split_dir)
            config = config | {"data": config["data"] | {"max_rows": 0}}  # the split already read at most max_rows
            data = str(batch)
            if Registry(registry).read_pointer(name).version is None:
                happened["bootstrap"] = bootstrap(config, production_data, out / "bootstrap", registry, checkpoints)
        before = Registry(registry).read_pointer(name)
        if before.version is None:
            raise DataError(f"{Registry(registry).pointer_uri(name)}: no production version of {name!r} to retrain "
                            "against; run reprflow retrain without --new-data once, or reprflow run --publish")
        outputs, seconds = run_locally(retrain_pipeline(None), out / "artifacts", data_uri=data, config=config,
                                       seeds=config["seeds"], registry=registry, checkpoint_root=checkpoints)
    except BaseException:
        if created and "bootstrap" not in happened:
            shutil.rmtree(split_dir, ignore_errors=True)
        raise
    after = Registry(registry).read_pointer(name)
    return happened | {"summary_dir": outputs["summary"], "candidate": outputs["bundle"], "seconds": seconds,
                       "production_before": before.version, "production_after": after.version}
