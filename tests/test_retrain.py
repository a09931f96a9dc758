"""Retraining: drift against theory (a pure rotation moves raw embeddings and leaves FPR features
where they were), the gate's rules, promotion by compare-and-swap, and the whole loop on real data
through the command line: bootstrap, retrain and promote, prepare an A/B test, retrain and reject."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import ortho_group

from reprflow.components.common.config import validate_config
from reprflow.components.common.errors import DataError
from reprflow.components.common.registry import Pointer, PointerMoved, Registry
from reprflow.components.common.tasks import build_tasks
from reprflow.components.featurize.fpr import FPRFeaturizer, select_anchors
from reprflow.components.ingest.ingest import ingest
from reprflow.components.package.bundle import SCHEMA, Bundle, ids_digest, production_models, served_features
from reprflow.components.retrain.drift import compute_drift, entity_drift
from reprflow.components.retrain.gate import gate
from reprflow.components.retrain.promote import promote, publish_and_maybe_promote, publish_bundle
from reprflow.pipelines.cli import main

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def test_entity_drift_closed_forms() -> None:
    a = RNG.normal(size=(200, 6))
    same = entity_drift(a, a.copy())
    assert same["relative_change_median"] == 0 and same["knn_overlap_at_10"] == 1.0
    doubled = entity_drift(a, 2 * a)
    assert doubled["relative_change_median"] == pytest.approx(1.0) and doubled["knn_overlap_at_10"] == 1.0
    unrelated = entity_drift(a, RNG.normal(size=(200, 6)))
    assert unrelated["knn_overlap_at_10"] < 0.2 and unrelated["relative_change_median"] > 1.0
    assert sum(doubled["histogram"]["counts"]) == 200
    for n in (0, 1):  # too few common entities: a named error, not an IndexError
        with pytest.raises(DataError, match=f"share {n} entities"):
            entity_drift(a[:n], a[:n])
    with pytest.raises(DataError, match="share 0 entities"):
        entity_drift(np.zeros((5, 6)), a[:5])


@pytest.fixture(scope="module")
def retail(retail_slice: Path):
    config = validate_config({"data": {"uri": str(retail_slice)}, "downstream": {"product_type_classes": 5}})
    data = ingest(str(retail_slice), 3)
    return config, data


def make_bundle(root: Path, tables: np.ndarray, data, config: dict, offline: dict) -> Bundle:
    """A bundle written with the library's own pieces; `offline` gives each task's served metrics."""
    ids = data.items["item"].astype(str).tolist()
    featurizer = FPRFeaturizer(tuple(select_anchors(ids, data.items["baskets"].to_numpy(), 16)))
    tasks = build_tasks(data.interactions, data.items, config)
    (root / "embeddings").mkdir(parents=True)
    np.save(root / "embeddings" / "embeddings.npy", tables)
    (root / "embeddings" / "ids.json").write_text(json.dumps(ids))
    (root / "featurizer").mkdir()
    (root / "featurizer" / "featurizer.json").write_text(json.dumps(featurizer.to_dict()))
    models = {}
    for task, reps in production_models(tasks, served_features(tables, ids, featurizer)).items():
        (root / "models" / task).mkdir(parents=True)
        for rep, model in reps.items():
            model.save(root / "models" / task / f"{rep}.json")
        models[task] = {rep: f"models/{task}/{rep}.json" for rep in reps}
    meta = {"schema": SCHEMA, "name": "retail", "served_representation": "fpr_seedmean",
            "entities": {"count": len(ids), "ids_sha256": ids_digest(ids)},
            "tasks": {t.name: {"kind": t.kind, "metric": t.metric, "definition": {"kind": t.kind},
                               "offline": {rep: offline for rep in ("fpr_seedmean", "raw")}} for t in tasks},
            "provenance": {"inputs": []}, "featurizer": "featurizer/featurizer.json", "models": models}
    (root / "bundle.json").write_text(json.dumps(meta))
    return Bundle.load(root)


def test_a_rotated_retrain_moves_raw_embeddings_and_not_fpr_features(retail, tmp_path: Path) -> None:
    """Pretraining fixes embeddings up to a rotation: a retrain that is exactly a rotation of each
    seed's table leaves the served FPR features, and production's model on them, unchanged."""
    config, data = retail
    n = len(data.items)
    tables = RNG.normal(size=(2, n, 8)).astype(np.float32)
    rotated = np.stack([t @ ortho_group.rvs(8, random_state=s).astype(np.float32) for s, t in enumerate(tables)])
    offline = {"downstream_mean": 0.5, "downstream_std": 0.01, "per_seed": [0.5], "churn": 0.1, "swap_mean": 0.5}
    production = make_bundle(tmp_path / "p", tables, data, config, offline)
    candidate = make_bundle(tmp_path / "c", rotated, data, config, offline)
    drift = compute_drift(production, candidate, data.interactions, data.items, config)
    assert drift["entities"] == {"production": n, "candidate": n, "common": n}
    fpr, raw = drift["representations"]["fpr_seedmean"], drift["representations"]["raw"]
    assert fpr["relative_change_median"] < 1e-5 and fpr["knn_overlap_at_10"] > 0.99
    assert raw["relative_change_median"] > 0.5  # random 8-d tables: ~sqrt(2)
    for task, reps in drift["production_model"].items():
        assert reps["fpr_seedmean"]["churn"] < 1e-3, task
        assert reps["fpr_seedmean"]["metric_candidate_features"] == pytest.approx(reps["fpr_seedmean"]["metric_production"], abs=1e-3)
        assert reps["raw"]["churn"] > reps["fpr_seedmean"]["churn"], task
        # the same data, the same labels: each version's own model scores the same on its own features
        assert reps["fpr_seedmean"]["metric_candidate"] == pytest.approx(reps["fpr_seedmean"]["metric_production"], abs=1e-3)
    assert gate(production, candidate, drift, config)["promote"]


def test_a_task_the_candidate_lacks_is_refused_by_the_gate_not_a_crash(retail, tmp_path: Path) -> None:
    config, data = retail
    tables = RNG.normal(size=(2, len(data.items), 8)).astype(np.float32)
    offline = {"downstream_mean": 0.5, "downstream_std": 0.01, "per_seed": [0.5], "churn": 0.1, "swap_mean": 0.5}
    production = make_bundle(tmp_path / "p", tables, data, config, offline)
    full = make_bundle(tmp_path / "c", tables, data, config, offline)
    dropped = next(iter(full.meta["tasks"]))
    meta = {**full.meta, "tasks": {t: v for t, v in full.meta["tasks"].items() if t != dropped},
            "models": {t: v for t, v in full.meta["models"].items() if t != dropped}}
    candidate = Bundle(full.root, meta)
    drift = compute_drift(production, candidate, data.interactions, data.items, config)
    assert dropped not in drift["production_model"] and len(drift["production_model"]) == len(meta["tasks"])
    decision = gate(production, candidate, drift, config)
    assert not decision["promote"]
    assert decision["reasons"] == [f"{dropped}: the candidate's task differs from production's (missing)"]


def bundle_with(tmp_path: Path, name: str, std: float, definition: dict | None = None) -> Bundle:
    tasks = {"product_type": {"metric": "accuracy", "definition": definition or {"k": 1},
                              "offline": {rep: {"downstream_std": std} for rep in ("fpr_seedmean", "raw")}}}
    return Bundle(tmp_path / name, {"tasks": tasks})


@pytest.mark.parametrize("candidate, moved, definition, passed, reason, stds", [
    (0.79, 0.1, None, True, "", (0.03, 0.02)),  # a drop within the larger seed std
    (0.75, 0.1, None, False, "same 100 test rows: candidate 0.7500, production 0.8000; a drop of at most 0.0300",
     (0.03, 0.02)),
    (0.90, 0.6, None, False, "moved by a median 0.600 (relative); the bound is 0.5", (0.03, 0.02)),
    (0.90, 0.1, {"k": 2}, False, "the candidate's task differs from production's (k)", (0.03, 0.02)),
    # a std that is not a number sets no allowed drop, whichever version has it
    (0.78, 0.1, None, False, "seed std on fpr_seedmean is not a finite number (production 0.03, candidate nan)",
     (0.03, float("nan"))),
    (0.78, 0.1, None, False, "(production nan, candidate 0.03)", (float("nan"), 0.03)),
    (0.10, 0.1, None, False, "(production 0.03, candidate inf)", (0.03, float("inf"))),
])
def test_gate_rules(tmp_path: Path, candidate, moved, definition, passed, reason, stds) -> None:
    config = validate_config({"data": {"uri": "x"}})
    production = bundle_with(tmp_path, "p", stds[0])
    cand = bundle_with(tmp_path, "c", stds[1], definition)
    same_rows = {"metric_production": 0.80, "metric_candidate": candidate, "n_test": 100}
    drift = {"representations": {"fpr_seedmean": {"relative_change_median": moved}}, "entities": {"common": 100},
             "production_model": {"product_type": {"fpr_seedmean": same_rows}}}
    decision = gate(production, cand, drift, config)
    assert decision["promote"] is passed
    assert (reason in " ".join(decision["reasons"])) if reason else decision["reasons"] == []


def test_promotion_is_compare_and_swap_and_a_loser_loses_nothing(tmp_path: Path) -> None:
    from test_package import write_minimal_bundle

    write_minimal_bundle(tmp_path / "a", [f"i{k}" for k in range(10)])
    write_minimal_bundle(tmp_path / "b", [f"i{k}" for k in range(12)])
    registry = Registry(tmp_path / "registry")
    first = publish_bundle(str(tmp_path / "a"), str(tmp_path / "registry"))
    start = registry.move_pointer("shop", first.version_id, registry.read_pointer("shop"))
    won = promote(str(tmp_path / "a"), str(tmp_path / "registry"), start)  # two retrains read `start`
    with pytest.raises(PointerMoved, match="moved since it was read .* your version .* stays published"):
        promote(str(tmp_path / "b"), str(tmp_path / "registry"), start)
    assert registry.read_pointer("shop").version == won["version"] == first.version_id  # same files: reused
    assert len(registry.list_versions("shop")) == 2  # the loser's version is published, just not current


def test_a_retried_promote_or_publish_step_is_idempotent(tmp_path: Path) -> None:
    """KFP retries a failed task with the same inputs: an attempt that moved the pointer and then
    failed must not make the retry fail (PointerMoved) or publish a second copy."""
    from test_package import write_minimal_bundle

    root = str(tmp_path / "registry")
    write_minimal_bundle(tmp_path / "a", [f"i{k}" for k in range(10)])
    write_minimal_bundle(tmp_path / "b", [f"i{k}" for k in range(12)])
    first = publish_and_maybe_promote(str(tmp_path / "a"), root)
    again = publish_and_maybe_promote(str(tmp_path / "a"), root)
    assert again == {k: first[k] for k in ("name", "version", "uri", "current", "generation")}
    registry = Registry(root)
    start = registry.read_pointer("shop")
    won = promote(str(tmp_path / "b"), root, start)
    assert promote(str(tmp_path / "b"), root, start) == won
    assert registry.list_versions("shop") == sorted([first["version"], won["version"]])
    write_minimal_bundle(tmp_path / "c", [f"i{k}" for k in range(14)])
    with pytest.raises(PointerMoved):  # a retrain that lost the race publishes once, however often KFP retries it
        promote(str(tmp_path / "c"), root, start)
    with pytest.raises(PointerMoved):
        promote(str(tmp_path / "c"), root, start)
    assert len(registry.list_versions("shop")) == 3


def test_two_first_publishers_one_becomes_current_the_other_stays_published(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from test_package import write_minimal_bundle

    root = str(tmp_path / "registry")
    write_minimal_bundle(tmp_path / "a", [f"i{k}" for k in range(10)])
    write_minimal_bundle(tmp_path / "b", [f"i{k}" for k in range(12)])
    won = publish_and_maybe_promote(str(tmp_path / "b"), root)
    stale = iter([Pointer(None, 0)])  # "a" read the empty pointer before "b" moved it
    real_read = Registry.read_pointer
    monkeypatch.setattr(Registry, "read_pointer", lambda self, name: next(stale, None) or real_read(self, name))
    lost = publish_and_maybe_promote(str(tmp_path / "a"), root)
    assert won["current"] and not lost["current"] and lost["current_version"] == won["version"]
    assert Registry(root).read_pointer("shop").version == won["version"]
    assert sorted(Registry(root).list_versions("shop")) == sorted([won["version"], lost["version"]])


@pytest.mark.pipeline
def test_retrain_promote_ab_prep_and_reject_through_the_cli(tmp_path: Path, retail_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    raw = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    raw["data"]["uri"] = str(retail_path)
    raw["retrain"] |= {"max_feature_drift": 10.0}
    raw["ab"] = {"min_entity_overlap": 0.5, "task": "product_type"}
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(yaml.safe_dump(raw))
    registry = tmp_path / "registry"
    out = tmp_path / "first"

    assert main(["retrain", "--config", str(lenient), "--output-dir", str(out), "--registry", str(registry)]) == 0
    said = capsys.readouterr().out
    assert "bootstrap: production online-retail version" in said and "promoted: production is now" in said
    versions = Registry(registry).list_versions("online-retail")
    assert len(versions) == 2 and Registry(registry).read_pointer("online-retail").version == versions[1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gate"]["promote"] and summary["production"]["version"] == versions[0]
    assert set(summary["drift"]["representations"]) == {"fpr_seedmean", "raw"}
    assert "data:image/png;base64," in (out / "report.html").read_text()

    # A/B: the old production against the new one
    old = Registry(registry).version_uri("online-retail", versions[0])
    ab = tmp_path / "ab"
    assert main(["ab-prep", "--config", str(lenient), "--control", old, "--treatment", "current",
                 "--registry", str(registry), "--output-dir", str(ab)]) == 0
    handoff = json.loads((ab / "handoff.json").read_text())
    assert handoff["schema"] == "reprflow.handoff/1" and handoff["control"]["version_id"] == versions[0]
    assert handoff["treatment"]["version_id"] == versions[1] and handoff["sample_size"]["control"] > 0

    # a strict gate and other seeds: the candidate is rejected and production does not move
    raw["retrain"] |= {"max_feature_drift": 1e-6}
    raw["seeds"] = [5, 6]
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(raw))
    batch = next((out / "data" / "incoming").iterdir())
    assert main(["retrain", "--config", str(strict), "--output-dir", str(tmp_path / "second"), "--registry",
                 str(registry), "--new-data", str(batch)]) == 0
    said = capsys.readouterr().out
    assert f"rejected; production stays {versions[1]}" in said and "the bound is 1e-06" in said
    assert Registry(registry).read_pointer("online-retail").version == versions[1]
    assert len(Registry(registry).list_versions("online-retail")) == 2

    # a batch with a missing column: one line naming the file and the column, nothing left, production as it was
    bad = tmp_path / "bad-batch"
    bad.mkdir()
    (bad / "part-0.csv").write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,CustomerID\n"
                                    "536365,85123A,X,6,2010-12-01 08:26:00,1\n")
    third = tmp_path / "third"
    assert main(["retrain", "--config", str(strict), "--output-dir", str(third), "--registry", str(registry),
                 "--new-data", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"reprflow: error: {bad / 'part-0.csv'}: missing column 'UnitPrice' (found: InvoiceNo, StockCode, " \
                  "Description, Quantity, InvoiceDate, CustomerID)"
    assert not (third / "artifacts").exists() and not (third / "summary.json").exists()
    assert Registry(registry).read_pointer("online-retail").version == versions[1]


def test_retrain_without_production_or_with_bad_data_fails_in_one_line(tmp_path: Path, retail_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    config = REPO / "configs" / "tiny.yaml"
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "part-0.csv").write_text("InvoiceNo,StockCode\n1,85123A\n")
    argv = ["retrain", "--config", str(config), "--data", str(retail_path), "--output-dir", str(tmp_path / "o"),
            "--registry", str(tmp_path / "registry"), "--new-data", str(batch)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("reprflow: error: ") and "no production version of 'online-retail'" in err
    assert not (tmp_path / "o" / "artifacts").exists()


def test_retrain_names_the_users_file_for_a_bad_value_and_leaves_no_split(tmp_path: Path, retail_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    import gzip

    with gzip.open(retail_path, "rt", encoding="utf-8", errors="replace") as f:
        lines = [next(f) for _ in range(40)]
    head = lines[0].rstrip("\n").split(",")
    row = lines[4].rstrip("\n").split(",")  # line 5 of the file; no quoted commas in these rows
    assert len(row) == len(head)
    row[head.index("UnitPrice")] = "abc"
    lines[4] = ",".join(row) + "\n"
    data = tmp_path / "mine.csv"
    data.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["retrain", "--config", str(REPO / "configs" / "tiny.yaml"), "--data", str(data), "--output-dir",
            str(out), "--registry", str(tmp_path / "registry")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"reprflow: error: {data}: column 'UnitPrice' line 5: cannot parse 'abc' as a number (1 such rows)"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not (tmp_path / "registry").exists()

    # valid values on both sides of the cut, too few to train on: the bootstrap fails after the split
    lines[4] = lines[5]
    date = head.index("InvoiceDate")
    for i in range(30, 40):
        row = lines[i].rstrip("\n").split(",")
        row[date] = "2011-01-05 10:00:00"
        lines[i] = ",".join(row) + "\n"
    data.write_text("".join(lines), encoding="utf-8")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"reprflow: error: bootstrap from the rows of {data} before 2010-12-15: ")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]

