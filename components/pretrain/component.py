"""KFP component: pretrain. Declaration only; the work is in reprflow.components.pretrain.run."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def pretrain(
    interactions: Input[Dataset],
    items: Input[Dataset],
    seed: int,
    config: dict,
    checkpoint_root: str,
    model: Output[Model],
    candidate: dict = {},
):
    """item2vec for one seed; resumes from `checkpoint_root` when a checkpoint exists.

    `candidate` ({"name": ..., pretrain fields}) overrides the configured hyperparameters."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.pretrain.run import run_pretrain

    meta = run_stage(
        lambda cfg: run_pretrain(interactions.path, items.path, seed, cfg, checkpoint_root, model.path, candidate),
        config,
    )
    model.metadata.update({"seed": seed, "config_hash": meta["config_hash"], "code_version": meta["code_version"]})
