"""Packaging: every package folder ships, the image tag is the version, the console script exists."""

from __future__ import annotations

import tomllib
from pathlib import Path

import reprflow
from reprflow.version import IMAGE, __version__

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    on_disk = set()
    for prefix, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            on_disk.add(".".join([prefix, *rel.parts]))
    assert on_disk == set(PYPROJECT["tool"]["setuptools"]["packages"])


def test_image_tag_is_the_package_version() -> None:
    assert IMAGE.endswith(f":{__version__}") and reprflow.__version__ == __version__
    assert PYPROJECT["project"]["scripts"]["reprflow"] == "reprflow.pipelines.cli:main"
