"""KFP component: package. Declaration only; the work is in reprflow.components.package.run."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def package(
    embedding_set: Input[Dataset],
    featurizer: Input[Artifact],
    results: Input[Dataset],
    interactions: Input[Dataset],
    items: Input[Dataset],
    dataset_stats: dict,
    config: dict,
    bundle: Output[Artifact],
):
    """The servable bundle: embeddings, featurizer, production models, offline metrics, provenance."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.package.run import run_package

    meta = run_stage(
        lambda cfg: run_package(embedding_set.path, featurizer.path, results.path, interactions.path, items.path,
                                dataset_stats, cfg, bundle.path),
        config,
    )
    bundle.metadata.update({"name": meta["name"], "entities": meta["entities"]["count"],
                            "config_hash": meta["provenance"]["config_hash"]})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fetch_bundle(reference: str, registry: str, config: dict, bundle: Output[Artifact]) -> str:
    """The bundle a reference names (a version URI, "current", or a folder); returns its URI."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.package.fetch import fetch_bundle as fetch

    uri = run_stage(lambda cfg: fetch(reference, registry, cfg["retrain"]["name"], bundle.path), config)
    bundle.metadata["uri"] = uri
    return uri


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def publish_bundle(bundle: Input[Artifact], registry: str, config: dict) -> dict:
    """Publish the bundle as a new version; it becomes production (current) only if there is none."""
    from reprflow.components.common.stage import run_stage
    from reprflow.components.retrain.promote import publish_and_maybe_promote

    return run_stage(lambda cfg: publish_and_maybe_promote(bundle.path, registry), config)
