"""Publishing bundles to the registry and moving its current pointer (production).

The pointer moves only from the generation the retrain read when it started (compare-and-swap,
registry.Registry.move_pointer): if someone promoted another version meanwhile, this promotion
fails with `PointerMoved`, production stays what the other writer made it, and the candidate
stays published at its own URI, ready to be promoted after a fresh comparison.
"""

from __future__ import annotations

from typing import Any

from reprflow.components.common.errors import DataError
from reprflow.components.common.registry import Pointer, PointerMoved, Registry, Version
from reprflow.components.package.bundle import Bundle


def registry_for(root: str) -> Registry:
    if not root:
        raise DataError("no registry: set cluster.registry in the configuration (a directory or gs:// prefix)")
    return Registry(root)


def publish_bundle(bundle_dir: str, registry_root: str) -> Version:
    """Publish a bundle as a version of its name; the pointer is not touched. A version that already
    holds exactly this bundle (a retried step, a promotion that lost a race) is reused."""
    bundle = Bundle.load(bundle_dir)
    extra = {"entities": bundle.meta["entities"], "served_representation": bundle.meta["served_representation"]}
    return registry_for(registry_root).publish(bundle.name, bundle_dir, {**bundle.meta["provenance"], **extra},
                                               reuse=True)


def promote(bundle_dir: str, registry_root: str, expected: Pointer) -> dict[str, Any]:
    """Publish the bundle and make it current, if the pointer is still at `expected`.

    Idempotent: when the current version already holds exactly this bundle (a retried step whose
    first attempt moved the pointer, then failed), that version is the result."""
    registry = registry_for(registry_root)
    name = Bundle.load(bundle_dir).name
    done = registry.read_pointer(name)
    if done.version != expected.version and registry.holds(done.version, bundle_dir):
        return {"name": name, "version": done.version, "uri": registry.version_uri(name, done.version),
                "previous": expected.version, "generation": done.generation}
    version = publish_bundle(bundle_dir, registry_root)
    pointer = registry.move_pointer(version.name, version.version_id, expected)
    return {"name": version.name, "version": version.version_id, "uri": version.uri,
            "previous": expected.version, "generation": pointer.generation}


def publish_and_maybe_promote(bundle_dir: str, registry_root: str) -> dict[str, Any]:
    """Publish; make it current only when there is no current version yet (the first production).

    A bundle that is already current (a retried step) is not published again."""
    registry = registry_for(registry_root)
    name = Bundle.load(bundle_dir).name
    pointer = registry.read_pointer(name)
    if pointer.version is None:
        try:
            return {**promote(bundle_dir, registry_root, pointer), "current": True}
        except PointerMoved:  # another first publisher won; ours stays published, not current
            pointer = registry.read_pointer(name)
    if registry.holds(pointer.version, bundle_dir):
        return {"name": name, "version": pointer.version, "uri": registry.version_uri(name, pointer.version),
                "current": True, "generation": pointer.generation}
    version = publish_bundle(bundle_dir, registry_root)
    return {"name": name, "version": version.version_id, "uri": version.uri, "current": False,
            "current_version": pointer.version}


def pinned_config(config: dict[str, Any], production: Bundle) -> dict[str, Any]:
    """The run configuration for a retrain against `production`: its task definitions pinned (the
    product-type classes), so both are measured on the same tasks whatever the new data say; no row
    cap (`data.max_rows` would cut the new batch, which is read after production's data); and no
    featurizer-family study (a retrain keeps production's featurizer)."""
    labels = production.meta["tasks"].get("product_type", {}).get("definition", {}).get("labels", [])
    return config | {"data": config["data"] | {"max_rows": 0},
                     "featurize": config["featurize"] | {"compare_variants": False},  # production's featurizer
                     "downstream": config["downstream"] | {"product_type_labels": list(labels)}}


def resolve_production(registry_root: str, name: str, out_dir: str) -> dict[str, Any]:
    """Fetch the current version of `name` into `out_dir` (verified against its manifest)."""
    registry = registry_for(registry_root)
    pointer = registry.read_pointer(name)
    if pointer.version is None:
        raise DataError(f"{registry.pointer_uri(name)}: there is no production version of {name!r} yet; publish "
                        "one first (reprflow run --publish, or reprflow retrain, which starts from one)")
    registry.fetch(name, pointer.version, out_dir)
    bundle = Bundle.load(out_dir)
    return {"name": name, "version": pointer.version, "generation": pointer.generation,
            "uri": registry.version_uri(name, pointer.version),
            "inputs": [i["uri"] for i in bundle.meta["provenance"].get("inputs", [])]}
