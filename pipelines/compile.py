"""Compile pipelines to KFP IR YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kfp import compiler

from reprflow.pipelines.representation import representation_pipeline


def compile_representation(path: Path, config: dict[str, Any] | None = None) -> Path:
    """Write the representation pipeline's IR YAML; `config` (validated) becomes the defaults."""
    params = None
    if config is not None:
        params = {"data_uri": config["data"]["uri"], "config": config, "seeds": config["seeds"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(representation_pipeline, str(path), pipeline_parameters=params)
    return path
