"""Compiled-pipeline snapshot: compile, strip volatile fields, compare with the committed YAML.

After an intended change to the DAG or a component, refresh the snapshot with
`REPRFLOW_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_compile_snapshot.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from reprflow.pipelines.cli import main
from reprflow.version import IMAGE

SNAPSHOTS = Path(__file__).parent / "snapshots"
VOLATILE = ("sdkVersion",)


def normalise(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in VOLATILE}


@pytest.mark.parametrize("name", ["representation", "selection"])
def test_compiled_pipeline_matches_snapshot(tmp_path: Path, name: str) -> None:
    assert main(["compile", "--output-dir", str(tmp_path)]) == 0
    compiled = normalise(yaml.safe_load((tmp_path / f"{name}.yaml").read_text()))
    snapshot = SNAPSHOTS / f"{name}.yaml"
    if os.environ.get("REPRFLOW_UPDATE_SNAPSHOTS"):
        snapshot.write_text(yaml.safe_dump(compiled, sort_keys=True))
    assert compiled == yaml.safe_load(snapshot.read_text())


def test_compiled_pipeline_structure(tmp_path: Path) -> None:
    """What the snapshot encodes, spelled out: the fan-out, the collection, the image."""
    main(["compile", "--output-dir", str(tmp_path)])
    doc = yaml.safe_load((tmp_path / "representation.yaml").read_text())
    tasks = doc["root"]["dag"]["tasks"]
    assert set(tasks) == {"ingest", "for-loop-1", "collect-embeddings", "featurize", "evaluate-predictability",
                          "downstream-train", "report"}
    loop = tasks["for-loop-1"]
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--seeds"
    inner = doc["components"]["comp-for-loop-1"]["dag"]["tasks"]
    assert set(inner) == {"pretrain", "embed"}
    collected = tasks["collect-embeddings"]["inputs"]["artifacts"]["embeddings"]["taskOutputArtifact"]
    assert collected["producerTask"] == "for-loop-1"
    images = {e["container"]["image"] for e in doc["deploymentSpec"]["executors"].values()}
    assert images == {IMAGE}
    assert all("pip install" not in " ".join(e["container"]["command"]) for e in doc["deploymentSpec"]["executors"].values())


def test_compile_with_config_sets_parameter_defaults(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "online_retail.yaml"
    main(["compile", "--output-dir", str(tmp_path), "--config", str(config)])
    params = yaml.safe_load((tmp_path / "representation.yaml").read_text())["root"]["inputDefinitions"]["parameters"]
    assert params["seeds"]["defaultValue"] == [0, 1, 2]
    assert params["config"]["defaultValue"]["pretrain"]["dim"] == 64


def test_selection_pipeline_fans_out_over_candidates(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "online_retail.yaml"
    main(["compile", "--output-dir", str(tmp_path), "--config", str(config)])
    doc = yaml.safe_load((tmp_path / "selection.yaml").read_text())
    assert set(doc["root"]["dag"]["tasks"]) == {"ingest", "for-loop-1", "score-candidates", "selection-report"}
    candidates = doc["root"]["inputDefinitions"]["parameters"]["candidates"]["defaultValue"]
    assert len(candidates) == 9 and candidates[0] == {"name": "d16-w2-n5", "dim": 16, "window": 2, "negatives": 5}
