"""Compiled-pipeline snapshot: compile, strip volatile fields, compare with the committed YAML.

After an intended change to the DAG or a component, refresh the snapshot with
`REPRFLOW_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_compile_snapshot.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from reprflow.pipelines.cli import main
from reprflow.version import IMAGE

SNAPSHOT = Path(__file__).parent / "snapshots" / "representation.yaml"
VOLATILE = ("sdkVersion",)


def normalise(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def test_compiled_pipeline_matches_snapshot(tmp_path: Path) -> None:
    assert main(["compile", "--output-dir", str(tmp_path)]) == 0
    compiled = normalise(yaml.safe_load((tmp_path / "representation.yaml").read_text()))
    if os.environ.get("REPRFLOW_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(yaml.safe_dump(compiled, sort_keys=True))
    assert compiled == yaml.safe_load(SNAPSHOT.read_text())


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
