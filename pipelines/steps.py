"""A piece of DAG that the representation and retrain pipelines share."""

from __future__ import annotations

from typing import Any

from kfp import dsl
from kfp.dsl import PipelineTask

from reprflow.components.embed.component import collect_embeddings, embed
from reprflow.components.pretrain.component import pretrain
from reprflow.pipelines.placement import Place


def embedding_set(
    place: Place, tables: dict[str, Any], seeds: Any, config: Any, checkpoint_root: Any, collect_config: Any = None
) -> PipelineTask:
    """Pretrain and embed every seed in a `dsl.ParallelFor`, then collect them: the task whose
    `embedding_set` output is the (K, n, d) set. `collect_config` (default `config`) configures the
    collection and what follows it."""
    with dsl.ParallelFor(seeds, name="seeds") as seed:
        trained = place("pretrain", pretrain, **tables, seed=seed, config=config, checkpoint_root=checkpoint_root)
        exported = place("embed", embed, model=trained.outputs["model"], items=tables["items"], config=config)
    return place("collect", collect_embeddings, embeddings=dsl.Collected(exported.outputs["embeddings"]),
                 config=config if collect_config is None else collect_config)
