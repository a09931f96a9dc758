"""Compile pipelines to KFP IR YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kfp import compiler

from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.profiles import DEFAULT_RESOURCES
from reprflow.components.model_selection.run import candidate_grid
from reprflow.pipelines.ab_prep import ab_prep_pipeline
from reprflow.pipelines.representation import representation_pipeline
from reprflow.pipelines.retrain import retrain_pipeline
from reprflow.pipelines.selection import selection_pipeline

# Short name (as on the command line) -> the pipeline factory; its KFP name is PIPELINE_NAME in its module.
PIPELINES = {"representation": representation_pipeline, "selection": selection_pipeline, "retrain": retrain_pipeline,
             "ab-prep": ab_prep_pipeline}


def pipeline_function(name: str, config: dict[str, Any] | None = None) -> Any:
    """The pipeline for a short name (representation, selection, retrain, ab-prep), its tasks placed by the resource
    profiles of `config` (validated), or the default profiles without one."""
    if name not in PIPELINES:
        raise ReprflowError(f"unknown pipeline {name!r} (known: {', '.join(PIPELINES)})")
    return PIPELINES[name](config["resources"] if config is not None else DEFAULT_RESOURCES)


def pipeline_inputs(name: str) -> dict[str, Any]:
    """Pipeline `name`'s input specs by parameter name."""
    return pipeline_function(name).component_spec.inputs or {}


def checkpoint_root(pipeline_root: str) -> str:
    """On a cluster, checkpoints go to the artifact store, so a retried pretraining task resumes on
    any node; '' (none) without a pipeline root."""
    return f"{pipeline_root.rstrip('/')}/checkpoints" if pipeline_root else ""


def pipeline_parameters(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The parameters a validated `config` gives pipeline `name`: compile-time defaults and run arguments."""
    pipeline_function(name)
    common = {"data_uri": config["data"]["uri"], "config": config,
              "checkpoint_root": checkpoint_root(config["cluster"]["pipeline_root"])}
    if name == "representation":
        return common | {"seeds": config["seeds"], "registry": config["cluster"]["registry"]}
    if name == "retrain":
        return common | {"seeds": config["seeds"], "registry": config["cluster"]["registry"]}
    if name == "ab-prep":  # the arms are the run's own arguments (--param control=... treatment=...)
        return {"config": config, "registry": config["cluster"]["registry"]}
    return common | {"candidates": candidate_grid(config), "seed": config["selection"]["seed"]}


def compile_pipeline(name: str, path: Path, config: dict[str, Any] | None = None) -> Path:
    """Compile pipeline `name` to KFP IR YAML at `path`; `config` (validated) becomes the defaults."""
    params = pipeline_parameters(name, config) if config is not None else None
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_function(name, config), str(path), pipeline_parameters=params)
    return path


def compile_pipelines(output_dir: Path, config: dict[str, Any] | None = None) -> list[Path]:
    """Write every pipeline as DIR/<name>.yaml; `config` (validated) becomes the defaults."""
    return [compile_pipeline(name, output_dir / f"{name}.yaml", config) for name in PIPELINES]
