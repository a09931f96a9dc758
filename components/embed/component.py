"""KFP components: embed (one seed) and collect (all seeds). Work: reprflow.components.embed.run."""

from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def embed(model: Input[Model], items: Input[Dataset], config: dict, embeddings: Output[Dataset]):
    """Export one seed's entity table in the items table's order."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.embed.run import run_embed

    meta = run_stage(lambda cfg: run_embed(model.path, items.path, cfg, embeddings.path), config)
    embeddings.metadata.update({"seed": meta["seed"], "shape": meta["shape"]})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def collect_embeddings(embeddings: Input[List[Dataset]], config: dict, embedding_set: Output[Dataset]):
    """Stack the per-seed tables into one (K, n, d) embedding set."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.embed.run import run_collect

    meta = run_stage(lambda cfg: run_collect([e.path for e in embeddings], cfg, embedding_set.path), config)
    embedding_set.metadata.update({"seeds": meta["seeds"], "shape": meta["shape"], "config_hash": meta["config_hash"]})
