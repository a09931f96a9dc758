"""Compile pipelines to KFP IR YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kfp import compiler

from reprflow.components.model_selection.run import candidate_grid
from reprflow.pipelines.representation import representation_pipeline
from reprflow.pipelines.selection import selection_pipeline


def compile_pipelines(output_dir: Path, config: dict[str, Any] | None = None) -> list[Path]:
    """Write representation.yaml and selection.yaml; `config` (validated) becomes the defaults."""
    rep_params = sel_params = None
    if config is not None:
        common = {"data_uri": config["data"]["uri"], "config": config}
        rep_params = common | {"seeds": config["seeds"]}
        sel_params = common | {"candidates": candidate_grid(config), "seed": config["selection"]["seed"]}
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, pipeline, params in (("representation", representation_pipeline, rep_params),
                                   ("selection", selection_pipeline, sel_params)):
        path = output_dir / f"{name}.yaml"
        compiler.Compiler().compile(pipeline, str(path), pipeline_parameters=params)
        paths.append(path)
    return paths
