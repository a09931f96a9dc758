"""The model-selection pipeline: ingest -> per candidate (pretrain -> embed) -> score every
candidate with every metric and downstream -> report the rank agreement. Built by a pure factory."""

from collections.abc import Mapping

from kfp import dsl
from kfp.dsl import Dataset

from reprflow.components.embed.component import embed
from reprflow.components.ingest.component import ingest
from reprflow.components.model_selection.component import score_candidates, selection_report
from reprflow.components.pretrain.component import pretrain
from reprflow.pipelines.placement import placement

PIPELINE_NAME = "reprflow-selection"


def selection_pipeline(resources: Mapping[str, str] | None = None) -> dsl.graph_component.GraphComponent:
    """The pipeline, each task placed by its stage's profile in `resources` (None: no placement)."""
    place = placement(resources)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Pretrain a grid of candidate embeddings, score each with every predictability metric, "
        "train downstream, and measure which metric ranks the candidates as the downstream models do.",
    )
    def pipeline(data_uri: str, config: dict, candidates: list, seed: int, checkpoint_root: str = "") -> Dataset:
        """`candidates`: [{"name", "dim", "window", "negatives"}], from model_selection.candidate_grid."""
        data = place("ingest", ingest, data_uri=data_uri, config=config)
        tables = {"interactions": data.outputs["interactions"], "items": data.outputs["items"]}
        with dsl.ParallelFor(candidates, name="candidates") as candidate:
            trained = place("pretrain", pretrain, **tables, seed=seed, config=config, checkpoint_root=checkpoint_root,
                            candidate=candidate)
            exported = place("embed", embed, model=trained.outputs["model"], items=tables["items"], config=config)
        scored = place("score", score_candidates, embeddings=dsl.Collected(exported.outputs["embeddings"]),
                       config=config, **tables)
        summary = place("report", selection_report, dataset_stats=data.outputs["Output"],
                        scores=scored.outputs["scores"], config=config)
        return summary.outputs["summary"]

    return pipeline
