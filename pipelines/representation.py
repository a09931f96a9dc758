"""The representation pipeline: ingest -> per seed (pretrain -> embed) -> collect -> featurize
-> evaluate-predictability and downstream-train -> report. Built by one pure factory; compiled
for a cluster or run locally."""

from collections.abc import Mapping
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset

from reprflow.components.downstream_train.component import downstream_train
from reprflow.components.evaluate_predictability.component import evaluate_predictability
from reprflow.components.featurize.component import featurize
from reprflow.components.ingest.component import ingest
from reprflow.components.package.component import package, publish_bundle
from reprflow.components.report.component import report
from reprflow.pipelines.placement import placement
from reprflow.pipelines.steps import embedding_set

PIPELINE_NAME = "reprflow-representation"


def representation_pipeline(resources: Mapping[str, str] | None = None) -> dsl.graph_component.GraphComponent:
    """The pipeline, each task placed by its stage's profile in `resources` (None: no placement)."""
    place = placement(resources)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Multi-seed item2vec pretraining, FPR featurization, stability and predictability, downstream models.",
    )
    def pipeline(
        data_uri: str, config: dict, seeds: list, checkpoint_root: str = "", registry: str = "", publish: bool = False
    ) -> NamedTuple("Outputs", summary=Dataset, bundle=Artifact):
        """`config` is a validated run configuration; `seeds` fan out in parallel. Outputs: the
        report's summary folder and the servable bundle, which `publish` publishes to `registry`
        (as production when the registry has none yet: how a first production version is made)."""
        data = place("ingest", ingest, data_uri=data_uri, config=config)
        tables = {"interactions": data.outputs["interactions"], "items": data.outputs["items"]}
        collected = embedding_set(place, tables, seeds, config, checkpoint_root)
        features = place("featurize", featurize, embedding_set=collected.outputs["embedding_set"],
                         items=tables["items"], config=config)
        representations = features.outputs["representations"]
        scores = place("evaluate", evaluate_predictability, representations=representations, config=config, **tables)
        results = place("downstream", downstream_train, representations=representations, config=config, **tables)
        summary = place("report", report, dataset_stats=data.outputs["Output"], representations=representations,
                        scores=scores.outputs["scores"], results=results.outputs["results"], config=config)
        bundle = place("package", package, embedding_set=collected.outputs["embedding_set"],
                       featurizer=features.outputs["featurizer"], results=results.outputs["results"],
                       dataset_stats=data.outputs["Output"], config=config, **tables)
        with dsl.If(publish == True, name="publish"):  # noqa: E712 (a DSL condition)
            place("promote", publish_bundle, bundle=bundle.outputs["bundle"], registry=registry, config=config)
        return NamedTuple("Outputs", summary=Dataset, bundle=Artifact)(summary.outputs["summary"],
                                                                      bundle.outputs["bundle"])

    return pipeline
