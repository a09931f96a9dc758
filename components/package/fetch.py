"""Finding a bundle by what a user calls it: a published version's URI, "current", or a folder.

- `{root}/{name}/versions/{version_id}` (a gs:// URI or a local path): that published version,
  downloaded and verified against its manifest;
- `current`: the version the registry's pointer names for the configuration's `retrain.name`;
- a local folder holding bundle.json (a run's unpublished bundle): copied as it is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from reprflow.components.common.artifacts import atomic_dir
from reprflow.components.common.errors import DataError
from reprflow.components.common.registry import Registry
from reprflow.components.package.bundle import Bundle

VERSION_URI = re.compile(r"^(?P<root>.+)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/?$")


def fetch_bundle(reference: str, registry_root: str, name: str, out_dir: str) -> str:
    """Put the bundle `reference` names into `out_dir`; returns its URI (the version's, or the folder)."""
    if reference == "current":
        if not registry_root:
            raise DataError("'current' needs a registry: pass --registry or set cluster.registry in the configuration")
        registry = Registry(registry_root)
        pointer = registry.read_pointer(name)
        if pointer.version is None:
            raise DataError(f"{registry.pointer_uri(name)}: there is no current version of {name!r}")
        registry.fetch(name, pointer.version, out_dir)
        return registry.version_uri(name, pointer.version)
    match = VERSION_URI.match(reference)
    if match:
        registry = Registry(match["root"])
        registry.fetch(match["name"], match["version"], out_dir)
        return registry.version_uri(match["name"], match["version"])
    folder = Path(reference)
    if reference.startswith("gs://") or not (folder / "bundle.json").is_file():
        raise DataError(f"{reference}: not a bundle (expected a version URI ROOT/NAME/versions/ID, 'current', "
                        "or a folder with bundle.json)")
    Bundle.load(folder)
    try:
        with atomic_dir(out_dir) as staging:
            shutil.copytree(folder, staging, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        raise DataError(f"{reference}: cannot copy the bundle ({exc})") from None
    return str(folder.resolve())
