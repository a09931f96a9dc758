"""KFP components: score-candidates and selection-report. Work: reprflow.components.model_selection."""

from typing import List

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def score_candidates(
    embeddings: Input[List[Dataset]],
    interactions: Input[Dataset],
    items: Input[Dataset],
    config: dict,
    scores: Output[Dataset],
):
    """Every predictability metric and a downstream model for each candidate and the random control."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.model_selection.run import run_score_candidates

    run_stage(
        lambda cfg: run_score_candidates([e.path for e in embeddings], interactions.path, items.path, cfg, scores.path),
        config,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def selection_report(
    dataset_stats: dict,
    scores: Input[Dataset],
    config: dict,
    summary: Output[Dataset],
    page: Output[HTML],
    markdown: Output[Markdown],
    metrics: Output[Metrics],
):
    """Leaderboards and each metric's rank agreement with the downstream result."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.model_selection.report import run_selection_report

    out = run_stage(
        lambda cfg: run_selection_report(dataset_stats, scores.path, summary.path, page.path, markdown.path), config
    )
    for name, value in out["metrics"].items():
        metrics.log_metric(name, value)
