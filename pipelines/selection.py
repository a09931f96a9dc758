"""The model-selection pipeline: ingest -> per candidate (pretrain -> embed) -> score every
candidate with every metric and downstream -> report the rank agreement."""

from kfp import dsl
from kfp.dsl import Dataset

from reprflow.components.embed.component import embed
from reprflow.components.ingest.component import ingest
from reprflow.components.model_selection.component import score_candidates, selection_report
from reprflow.components.pretrain.component import pretrain

PIPELINE_NAME = "reprflow-selection"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Pretrain a grid of candidate embeddings, score each with every predictability metric, "
    "train downstream, and measure which metric ranks the candidates as the downstream models do.",
)
def selection_pipeline(data_uri: str, config: dict, candidates: list, seed: int, checkpoint_root: str = "") -> Dataset:
    """`candidates`: [{"name", "dim", "window", "negatives"}], from model_selection.candidate_grid."""
    data = ingest(data_uri=data_uri, config=config)
    with dsl.ParallelFor(candidates, name="candidates") as candidate:
        trained = pretrain(
            interactions=data.outputs["interactions"], items=data.outputs["items"], seed=seed,
            config=config, checkpoint_root=checkpoint_root, candidate=candidate,
        )
        exported = embed(model=trained.outputs["model"], items=data.outputs["items"], config=config)
    scored = score_candidates(
        embeddings=dsl.Collected(exported.outputs["embeddings"]),
        interactions=data.outputs["interactions"], items=data.outputs["items"], config=config,
    )
    summary = selection_report(dataset_stats=data.outputs["Output"], scores=scored.outputs["scores"], config=config)
    return summary.outputs["summary"]
