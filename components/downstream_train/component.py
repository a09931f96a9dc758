"""KFP component: downstream-train. Work: reprflow.components.downstream_train.run."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def downstream_train(
    representations: Input[Dataset],
    interactions: Input[Dataset],
    items: Input[Dataset],
    config: dict,
    results: Output[Dataset],
):
    """One model per task, representation and pretraining seed: spread, churn, swap stability."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.downstream_train.run import run_downstream

    run_stage(lambda cfg: run_downstream(representations.path, interactions.path, items.path, cfg, results.path), config)
