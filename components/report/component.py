"""KFP component: report. Declaration only; the work is in reprflow.components.report.run."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def report(
    dataset_stats: dict,
    representations: Input[Dataset],
    scores: Input[Dataset],
    results: Input[Dataset],
    config: dict,
    summary: Output[Dataset],
    page: Output[HTML],
    markdown: Output[Markdown],
    metrics: Output[Metrics],
):
    """summary.json + report.html + report.md in `summary` (a directory), and the same for the KFP UI."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.report.run import run_report

    out = run_stage(
        lambda cfg: run_report(
            dataset_stats, representations.path, scores.path, results.path, summary.path, page.path, markdown.path
        ),
        config,
    )
    for name, value in out["metrics"].items():
        metrics.log_metric(name, value)
