"""Compiled-pipeline snapshot: compile, strip volatile fields, compare with the committed YAML.

After an intended change to the DAG or a component, refresh the snapshot with
`REPRFLOW_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_compile_snapshot.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from reprflow.components.common.config import validate_config
from reprflow.components.common.profiles import PROFILES
from reprflow.pipelines.cli import main
from reprflow.pipelines.compile import compile_pipeline
from reprflow.pipelines.placement import GPU_TOLERATION, SPOT_TOLERATION, whole_cores
from reprflow.version import CUDA_IMAGE, IMAGE

REPO = Path(__file__).resolve().parents[1]
EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}

SNAPSHOTS = Path(__file__).parent / "snapshots"
VOLATILE = ("sdkVersion",)
UPDATE = bool(os.environ.get("REPRFLOW_UPDATE_SNAPSHOTS"))


def load(path: Path) -> tuple[dict, dict]:
    """The pipeline spec (volatile fields stripped) and the platform spec of a compiled package."""
    spec, platform = yaml.safe_load_all(path.read_text())
    return {k: v for k, v in spec.items() if k not in VOLATILE}, platform


def matches_snapshot(value: object, snapshot: Path) -> bool:
    if UPDATE:
        snapshot.write_text(yaml.safe_dump(value, sort_keys=True))
    return value == yaml.safe_load(snapshot.read_text())


@pytest.mark.parametrize("name", ["representation", "selection", "retrain", "ab-prep"])
def test_compiled_pipeline_matches_snapshot(tmp_path: Path, name: str) -> None:
    assert main(["compile", "--output-dir", str(tmp_path)]) == 0
    spec, platform = load(tmp_path / f"{name}.yaml")
    assert matches_snapshot({"pipeline_spec": spec, "platform_spec": platform}, SNAPSHOTS / f"{name}.yaml")


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profile_compiles_to_its_snapshot(tmp_path: Path, profile: str) -> None:
    """Every stage on one profile: the pretrain task's container resources, retry policy, caching
    and Kubernetes platform spec (node selector, tolerations, timeout)."""
    config = validate_config({"data": {"uri": "gs://b/x.csv"}, "resources": {"default": profile}})
    spec, platform = load(compile_pipeline("representation", tmp_path / "p.yaml", config))
    task = spec["components"]["comp-for-loop-1"]["dag"]["tasks"]["pretrain"]
    placed = {
        "container_resources": spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]["resources"],
        "retry_policy": task["retryPolicy"],
        "caching": task["cachingOptions"],
        "ingest_caching": spec["root"]["dag"]["tasks"]["ingest"]["cachingOptions"],
        "kubernetes": platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-pretrain"],
    }
    assert matches_snapshot(placed, SNAPSHOTS / "profiles" / f"{profile}.yaml")
    gpu = PROFILES[profile].accelerator is not None
    assert ("accelerator" in placed["container_resources"]) == gpu
    images = {name: e["container"]["image"] for name, e in spec["deploymentSpec"]["executors"].items()}
    assert set(images.values()) == {CUDA_IMAGE if gpu else IMAGE}  # every stage on this one profile
    assert placed["caching"] == {"enableCache": True} and placed["ingest_caching"] == {}
    env = {e["name"]: e["value"] for e in spec["deploymentSpec"]["executors"]["exec-pretrain"]["container"]["env"]}
    assert env["OMP_NUM_THREADS"] == str(whole_cores(PROFILES[profile].cpu_limit))  # threads for the CPU limit
    assert [whole_cores(q) for q in ("2", "1.5", "500m", "2500m")] == [2, 1, 1, 2]
    assert (env.get("REPRFLOW_EXPECT_CUDA") == "1") == gpu


def test_gpu_profiles_tolerate_the_taints_of_the_node_pools() -> None:
    """The node pools' taints (manifests/base/nodepools.yaml) are tolerated by the profiles that
    select those pools, and every pool a profile selects exists."""
    pools = [doc for doc in yaml.safe_load_all((REPO / "manifests" / "base" / "nodepools.yaml").read_text())
             if doc and doc.get("kind") == "ContainerNodePool"]
    by_accelerator = {p["spec"]["nodeConfig"]["guestAccelerator"][0]["type"]: p for p in pools}
    for name, profile in PROFILES.items():
        if profile.accelerator is None:
            continue
        pool = by_accelerator[profile.accelerator]
        assert bool(pool["spec"]["nodeConfig"].get("spot")) == profile.spot, name
        tolerated = [GPU_TOLERATION] + ([SPOT_TOLERATION] if profile.spot else [])
        for taint in pool["spec"]["nodeConfig"]["taint"]:
            assert any(t["key"] == taint["key"] and t["effect"] == EFFECTS[taint["effect"]] for t in tolerated), (name, taint)


def test_compiled_pipeline_structure(tmp_path: Path) -> None:
    """What the snapshot encodes, spelled out: the fan-out, the collection, the image."""
    main(["compile", "--output-dir", str(tmp_path)])
    doc, _ = load(tmp_path / "representation.yaml")
    tasks = doc["root"]["dag"]["tasks"]
    assert set(tasks) == {"ingest", "for-loop-1", "collect-embeddings", "featurize", "evaluate-predictability",
                          "downstream-train", "report", "package", "condition-2"}
    publish = tasks["condition-2"]  # publishing the bundle only when asked to
    assert publish["taskInfo"]["name"] == "publish" and publish["triggerPolicy"]["condition"].endswith("== true")
    assert set(doc["components"]["comp-condition-2"]["dag"]["tasks"]) == {"publish-bundle"}
    loop = tasks["for-loop-1"]
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--seeds"
    inner = doc["components"]["comp-for-loop-1"]["dag"]["tasks"]
    assert set(inner) == {"pretrain", "embed"}
    collected = tasks["collect-embeddings"]["inputs"]["artifacts"]["embeddings"]["taskOutputArtifact"]
    assert collected["producerTask"] == "for-loop-1"
    images = {e["container"]["image"] for e in doc["deploymentSpec"]["executors"].values()}
    assert images == {IMAGE}
    assert all("pip install" not in " ".join(e["container"]["command"]) for e in doc["deploymentSpec"]["executors"].values())


def test_unwritable_output_dir_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["compile", "--output-dir", str(blocker / "out")]) == 1
    assert capsys.readouterr().err.strip() == f"reprflow: error: {blocker / 'out'}: Not a directory"


def test_compile_with_config_sets_parameter_defaults(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "online_retail.yaml"
    main(["compile", "--output-dir", str(tmp_path), "--config", str(config)])
    params = load(tmp_path / "representation.yaml")[0]["root"]["inputDefinitions"]["parameters"]
    assert params["seeds"]["defaultValue"] == [0, 1, 2]
    assert params["config"]["defaultValue"]["pretrain"]["dim"] == 64


def test_selection_pipeline_fans_out_over_candidates(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "online_retail.yaml"
    main(["compile", "--output-dir", str(tmp_path), "--config", str(config)])
    doc, _ = load(tmp_path / "selection.yaml")
    assert set(doc["root"]["dag"]["tasks"]) == {"ingest", "for-loop-1", "score-candidates", "selection-report"}
    candidates = doc["root"]["inputDefinitions"]["parameters"]["candidates"]["defaultValue"]
    assert len(candidates) == 9 and candidates[0] == {"name": "d16-w2-n5", "dim": 16, "window": 2, "negatives": 5}


def test_retrain_promotes_only_when_the_gate_passes(tmp_path: Path) -> None:
    """The promote task sits under a condition on the comparison's output; resolve and promote are
    never cached (they read and move the registry's pointer)."""
    config = validate_config({"data": {"uri": "gs://b/x.csv"}})
    spec, _ = load(compile_pipeline("retrain", tmp_path / "r.yaml", config))
    tasks = spec["root"]["dag"]["tasks"]
    condition = tasks["condition-2"]
    assert condition["triggerPolicy"]["condition"].endswith("== true")
    assert "compare-with-production" in condition["dependentTasks"]
    inner = spec["components"]["comp-condition-2"]["dag"]["tasks"]
    assert set(inner) == {"promote-candidate"}
    assert inner["promote-candidate"]["cachingOptions"] == {} and tasks["resolve-production"]["cachingOptions"] == {}
    ingest = tasks["ingest"]["inputs"]["parameters"]["base_uris"]["taskOutputParameter"]
    assert ingest == {"outputParameterKey": "inputs", "producerTask": "resolve-production"}


def test_the_command_line_knows_every_pipeline() -> None:
    from reprflow.pipelines.cli import PIPELINE_NAMES
    from reprflow.pipelines.compile import PIPELINES

    assert tuple(PIPELINES) == PIPELINE_NAMES
