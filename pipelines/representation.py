"""The representation pipeline: ingest -> per seed (pretrain -> embed) -> collect -> featurize
-> evaluate-predictability and downstream-train -> report. Defined once; compiled or run locally."""

from kfp import dsl
from kfp.dsl import Dataset

from reprflow.components.downstream_train.component import downstream_train
from reprflow.components.embed.component import collect_embeddings, embed
from reprflow.components.evaluate_predictability.component import evaluate_predictability
from reprflow.components.featurize.component import featurize
from reprflow.components.ingest.component import ingest
from reprflow.components.pretrain.component import pretrain
from reprflow.components.report.component import report

PIPELINE_NAME = "reprflow-representation"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Multi-seed item2vec pretraining, FPR featurization, stability and predictability, downstream models.",
)
def representation_pipeline(data_uri: str, config: dict, seeds: list, checkpoint_root: str = "") -> Dataset:
    """`config` is a validated run configuration (pipelines.config); `seeds` fan out in parallel."""
    data = ingest(data_uri=data_uri, config=config)
    with dsl.ParallelFor(seeds, name="seeds") as seed:
        trained = pretrain(
            interactions=data.outputs["interactions"], items=data.outputs["items"],
            seed=seed, config=config, checkpoint_root=checkpoint_root,
        )
        exported = embed(model=trained.outputs["model"], items=data.outputs["items"], config=config)
    collected = collect_embeddings(embeddings=dsl.Collected(exported.outputs["embeddings"]), config=config)
    features = featurize(embedding_set=collected.outputs["embedding_set"], items=data.outputs["items"], config=config)
    tables = {"interactions": data.outputs["interactions"], "items": data.outputs["items"]}
    scores = evaluate_predictability(representations=features.outputs["representations"], config=config, **tables)
    results = downstream_train(representations=features.outputs["representations"], config=config, **tables)
    summary = report(
        dataset_stats=data.outputs["Output"], representations=features.outputs["representations"],
        scores=scores.outputs["scores"], results=results.outputs["results"], config=config,
    )
    return summary.outputs["summary"]
