"""KFP component: featurize. Declaration only; the work is in reprflow.components.featurize.run."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def featurize(
    embedding_set: Input[Dataset],
    items: Input[Dataset],
    config: dict,
    featurizer: Output[Artifact],
    representations: Output[Dataset],
):
    """Fit FPR (anchors, kernel, bins) and write every representation strategy for comparison."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.featurize.run import run_featurize

    meta = run_stage(
        lambda cfg: run_featurize(embedding_set.path, items.path, cfg, featurizer.path, representations.path), config
    )
    featurizer.metadata.update({**meta["featurizer"], "config_hash": meta["config_hash"]})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def featurize_against(
    embedding_set: Input[Dataset],
    items: Input[Dataset],
    production: Input[Artifact],
    config: dict,
    featurizer: Output[Artifact],
    representations: Output[Dataset],
):
    """A retrain's representations with production's featurizer (its anchors, kernel and bins)."""
    import os

    from reprflow.components.common.stage import run_stage
    from reprflow.components.featurize.run import run_featurize

    reference = os.path.join(production.path, "featurizer", "featurizer.json")
    meta = run_stage(
        lambda cfg: run_featurize(embedding_set.path, items.path, cfg, featurizer.path, representations.path, reference),
        config,
    )
    featurizer.metadata.update({**meta["featurizer"], "config_hash": meta["config_hash"]})
