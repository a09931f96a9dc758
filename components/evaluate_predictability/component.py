"""KFP component: evaluate-predictability. Work: reprflow.components.evaluate_predictability.run."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_predictability(
    representations: Input[Dataset],
    interactions: Input[Dataset],
    items: Input[Dataset],
    config: dict,
    scores: Output[Dataset],
    metrics: Output[Metrics],
):
    """Stability across seeds and LogME / kernel alignment per task, before downstream training."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.evaluate_predictability.run import run_evaluate

    out = run_stage(
        lambda cfg: run_evaluate(representations.path, interactions.path, items.path, cfg, scores.path), config
    )
    for rep, values in out["stability"].items():
        for name, value in values.items():
            metrics.log_metric(f"{rep}_{name}", value)
