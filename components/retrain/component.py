"""KFP components of the retrain pipeline. Declarations only; the work is in reprflow.components.retrain."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def resolve_production(
    registry: str, config: dict, production: Output[Artifact]
) -> NamedTuple("Outputs", info=dict, inputs=list, config=dict):
    """Fetch the current production bundle. info: its version, URI and the pointer generation it was
    read at (the promotion moves the pointer only from there); inputs: the data it was trained on;
    config: the run configuration with production's task definitions pinned."""
    from collections import namedtuple

    from reprflow.components.common.stage import run_stage
    from reprflow.components.package.bundle import Bundle
    from reprflow.components.retrain.promote import pinned_config, resolve_production as resolve

    def work(cfg: dict) -> tuple:
        out = resolve(registry, cfg["retrain"]["name"], production.path)
        return out, pinned_config(cfg, Bundle.load(production.path))

    out, pinned = run_stage(work, config)
    production.metadata.update({k: out[k] for k in ("name", "version", "uri")})
    return namedtuple("Outputs", ["info", "inputs", "config"])(out, out["inputs"], pinned)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def compare_with_production(
    production: Input[Artifact],
    candidate: Input[Artifact],
    interactions: Input[Dataset],
    items: Input[Dataset],
    config: dict,
    comparison: Output[Dataset],
    metrics: Output[Metrics],
) -> bool:
    """Drift (raw and FPR), production's model on the candidate's features, and the gate: promote?"""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.retrain.run import run_compare

    out = run_stage(lambda cfg: run_compare(production.path, candidate.path, interactions.path, items.path, cfg,
                                            comparison.path), config)
    for rep, d in out["drift"]["representations"].items():
        metrics.log_metric(f"{rep}_relative_change_median", d["relative_change_median"])
    metrics.log_metric("promote", float(out["gate"]["promote"]))
    return bool(out["gate"]["promote"])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote_candidate(candidate: Input[Artifact], registry: str, production: dict, config: dict) -> dict:
    """Publish the candidate and make it production, if nobody moved the pointer since it was read."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.retrain.run import run_promote

    return run_stage(lambda cfg: run_promote(candidate.path, registry, production), config)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def retrain_report(
    dataset_stats: dict,
    production: dict,
    candidate: Input[Artifact],
    comparison: Input[Dataset],
    config: dict,
    summary: Output[Dataset],
    page: Output[HTML],
    markdown: Output[Markdown],
):
    """summary.json + report.html + report.md: the decision, why, and the drift."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.retrain.run import run_retrain_report

    run_stage(lambda cfg: run_retrain_report(dataset_stats, production, candidate.path, comparison.path,
                                             summary.path, page.path, markdown.path), config)
