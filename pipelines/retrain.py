"""The retrain pipeline: new data arrives -> retrain on production's data and the new batch ->
featurize against production's anchors -> evaluate, downstream -> compare with production (drift,
production's model on the new features, the gate) -> report -> if the gate passes: promote
(publish, then move the current pointer from the generation read at the start). Built by a pure
factory; compiled for a cluster or run locally (`reprflow retrain`)."""

from collections.abc import Mapping
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset

from reprflow.components.downstream_train.component import downstream_train
from reprflow.components.evaluate_predictability.component import evaluate_predictability
from reprflow.components.featurize.component import featurize_against
from reprflow.components.ingest.component import ingest
from reprflow.components.package.component import package
from reprflow.components.retrain.component import (
    compare_with_production,
    promote_candidate,
    resolve_production,
    retrain_report,
)
from reprflow.pipelines.placement import placement
from reprflow.pipelines.steps import embedding_set

PIPELINE_NAME = "reprflow-retrain"


def retrain_pipeline(resources: Mapping[str, str] | None = None) -> dsl.graph_component.GraphComponent:
    """The pipeline, each task placed by its stage's profile in `resources` (None: no placement)."""
    place = placement(resources)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Retrain the embeddings on production's data and a new batch, featurize against production's "
        "anchors, measure drift and the gate, and promote the candidate if it passes.",
    )
    def pipeline(
        data_uri: str, config: dict, seeds: list, registry: str, checkpoint_root: str = ""
    ) -> NamedTuple("Outputs", summary=Dataset, bundle=Artifact):
        """`data_uri`: the new batch (file, folder or gs:// prefix); `registry`: where production is."""
        production = place("resolve", resolve_production, registry=registry, config=config)
        # production's task definitions from here on (pretraining does not depend on them; and
        # kfp.local mis-resolves a task's dict output consumed inside a ParallelFor)
        pinned = production.outputs["config"]
        data = place("ingest", ingest, data_uri=data_uri, base_uris=production.outputs["inputs"], config=pinned)
        tables = {"interactions": data.outputs["interactions"], "items": data.outputs["items"]}
        collected = embedding_set(place, tables, seeds, config, checkpoint_root, collect_config=pinned)
        features = place("featurize", featurize_against, embedding_set=collected.outputs["embedding_set"],
                         items=tables["items"], production=production.outputs["production"], config=pinned)
        representations = features.outputs["representations"]
        place("evaluate", evaluate_predictability, representations=representations, config=pinned, **tables)
        results = place("downstream", downstream_train, representations=representations, config=pinned, **tables)
        candidate = place("package", package, embedding_set=collected.outputs["embedding_set"],
                          featurizer=features.outputs["featurizer"], results=results.outputs["results"],
                          dataset_stats=data.outputs["Output"], config=pinned, **tables)
        comparison = place("compare", compare_with_production, production=production.outputs["production"],
                           candidate=candidate.outputs["bundle"], config=pinned, **tables)
        summary = place("report", retrain_report, dataset_stats=data.outputs["Output"],
                        production=production.outputs["info"], candidate=candidate.outputs["bundle"],
                        comparison=comparison.outputs["comparison"], config=pinned)
        with dsl.If(comparison.outputs["Output"] == True, name="gate-passed"):  # noqa: E712 (a DSL condition)
            place("promote", promote_candidate, candidate=candidate.outputs["bundle"], registry=registry,
                  production=production.outputs["info"], config=pinned)
        return NamedTuple("Outputs", summary=Dataset, bundle=Artifact)(summary.outputs["summary"],
                                                                      candidate.outputs["bundle"])

    return pipeline
