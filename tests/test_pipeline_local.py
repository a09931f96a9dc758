"""The whole representation pipeline under kfp.local on a slice of the real data, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reprflow.pipelines.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.yaml"
STABILITY_KEYS = {"knn_overlap_at_10", "linear_cka", "procrustes_residual"}
REP_KEYS = {"logme", "kernel_alignment", "downstream_mean", "downstream_std", "churn", "swap_mean"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, retail_path: Path) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--config", str(TINY), "--data", str(retail_path), "--output-dir", str(out), "--publish",
                 "--registry", str(out / "registry")]) == 0
    return out


@pytest.mark.pipeline
def test_publish_makes_the_first_bundle_production(run_dir: Path) -> None:
    from reprflow.components.common.registry import Registry
    from reprflow.components.package.bundle import Bundle

    registry = Registry(run_dir / "registry")
    (version,) = registry.list_versions("online-retail")
    assert registry.read_pointer("online-retail").version == version
    registry.fetch("online-retail", "current", run_dir / "fetched")
    bundle = Bundle.load(run_dir / "fetched")
    assert set(bundle.meta["tasks"]) == {"product_type", "log_price", "repeat_purchase"}
    assert bundle.meta["provenance"]["seeds"] == [0, 1, 2] and bundle.features["fpr_seedmean"].shape[1] == 32


@pytest.mark.pipeline
def test_summary_has_the_contracted_schema_and_real_numbers(run_dir: Path) -> None:
    s = json.loads((run_dir / "summary.json").read_text())
    assert set(s["dataset"]) >= {"rows", "items", "baskets", "customers"}
    assert 0 < s["dataset"]["items"] < s["dataset"]["rows"]
    assert s["seeds"] == [0, 1, 2]
    stages = {"ingest", "pretrain", "pretrain_task_sum", "collect", "featurize", "evaluate", "downstream", "report", "total"}
    assert stages <= set(s["timings_s"]) and all(v >= 0 for v in s["timings_s"].values())
    assert s["timings_s"]["total"] >= s["timings_s"]["pretrain"]
    assert {"raw", "fpr"} <= set(s["stability"])
    for rep, vals in s["stability"].items():
        assert set(vals) == STABILITY_KEYS
        assert 0 <= vals["knn_overlap_at_10"] <= 1 and 0 <= vals["linear_cka"] <= 1 + 1e-9
    assert set(s["tasks"]) == {"product_type", "log_price", "repeat_purchase"}
    metrics = {t: e["metric"] for t, e in s["tasks"].items()}
    assert metrics == {"product_type": "accuracy", "log_price": "r2", "repeat_purchase": "auc"}
    for task, entry in s["tasks"].items():
        for rep, vals in entry["representations"].items():
            assert REP_KEYS <= set(vals)
            scored = REP_KEYS - ({"logme", "kernel_alignment"} if rep == "ensemble" else set())  # no one table
            assert all(np.isfinite(vals[k]) for k in scored)
            per_seed = np.array(vals["per_seed"])
            assert len(per_seed) == 3 and vals["downstream_mean"] == pytest.approx(per_seed.mean())
            assert vals["downstream_std"] == pytest.approx(per_seed.std(ddof=1))
            assert 0 <= vals["churn"] <= (1 if metrics[task] != "r2" else np.inf)
            assert vals["swap_mean"] == pytest.approx(np.mean(vals["swap"]))
    # 5 product-type classes: the seed ensemble is well above chance, as every representation is
    assert s["tasks"]["product_type"]["representations"]["ensemble"]["downstream_mean"] > 1 / 5 + 0.05
    assert set(s["tasks"]["product_type"]["representations"]) == {"raw", "aligned", "fpr", "fpr_seedmean", "concat", "ensemble"}
    for task, board in s["leaderboard"].items():
        means = [row["downstream_mean"] for row in board]
        assert means == sorted(means, reverse=True) and len(board) == 6
        assert set(s["selection"][task]) == {"logme", "kernel_alignment"}
        for agreement in s["selection"][task].values():
            assert set(agreement) == {"kendall_tau", "weighted_tau"}
            assert agreement["kendall_tau"] is None or -1 <= agreement["kendall_tau"] <= 1
    from reprflow.components.featurize.variants import VARIANTS

    single = {f"{v} / single seed" for v, kw in VARIANTS.items() if not (kw.get("seed_spread") or kw.get("quantile_bins"))}
    assert set(s["featurizers"]) == single | {f"{v} / seed mean" for v in VARIANTS}
    for variant, per_task in s["featurizers"].items():
        assert set(per_task) == set(s["tasks"]), variant
        assert all(np.isfinite(v) for r in per_task.values() for v in r.values()), variant
    # the configured featurizer is the family's "cosine" row: the same numbers as the fpr representations
    assert s["featurizers"]["cosine / seed mean"]["log_price"]["downstream_mean"] == pytest.approx(
        s["tasks"]["log_price"]["representations"]["fpr_seedmean"]["downstream_mean"], abs=1e-6)
    for rep in ("raw", "fpr"):
        assert set(s["homogeneity"][rep]) == {"dot", "mlp", "proxy"}
        for decoder in s["homogeneity"][rep].values():
            assert 0 <= decoder["hr_at_10_mean"] <= 1 and 0 <= decoder["top10_churn"] <= 1


@pytest.mark.pipeline
def test_artifacts_are_left_under_the_output_dir(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "<script" not in html.lower()
    assert "# reprflow run summary" in (run_dir / "report.md").read_text()
    assert "The featurizer family" in html and "cosine, k-means++ anchors / seed mean" in html
    embedding_sets = list((run_dir / "artifacts").glob("*/collect-embeddings/embedding_set/embeddings.npy"))
    assert len(embedding_sets) == 1
    stack = np.load(embedding_sets[0], allow_pickle=False)
    assert stack.shape[0] == 3 and stack.shape[2] == 16
    meta = json.loads((embedding_sets[0].parent / "meta.json").read_text())
    assert meta["seeds"] == [0, 1, 2] and meta["code_version"] and meta["config_hash"]
    assert isinstance(meta["untrained_items"], int) and 0 <= meta["untrained_items"] < stack.shape[1]
    featurizer = next((run_dir / "artifacts").glob("*/featurize/featurizer/featurizer.json"))
    assert len(json.loads(featurizer.read_text())["anchors"]) == 32
    assert len(list((run_dir / "checkpoints").glob("*/seed-*.pt"))) == 3


@pytest.mark.pipeline
def test_bad_data_fails_with_one_line_reason_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,CustomerID\n536365,85123A,X,6,2010-12-01 08:26:00,1\n")
    out = tmp_path / "new" / "out"
    assert main(["run", "--config", str(TINY), "--data", str(bad), "--output-dir", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"reprflow: error: {bad}: missing column 'UnitPrice' (found: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, CustomerID)"
    assert not (tmp_path / "new").exists()  # not even the empty folders the run created
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("the user's")
    assert main(["run", "--config", str(TINY), "--data", str(bad), "--output-dir", str(mine)]) == 1
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]


def test_missing_data_file_and_bad_config_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--config", str(TINY), "--data", str(tmp_path / "none.csv"), "--output-dir", str(tmp_path)]) == 1
    assert "none.csv: no such data file or folder" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {uri: x.csv}\npretrain: {dim: -3}\n")
    assert main(["run", "--config", str(cfg), "--output-dir", str(tmp_path / "o")]) == 1
    assert f"{cfg}: field 'pretrain.dim' must be a positive integer, got -3" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_file_where_a_run_writes_a_folder_fails_before_the_run(tmp_path: Path, retail_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("the user's")
    base = ["--config", str(TINY), "--data", str(retail_path), "--output-dir", str(tmp_path / "o")]
    for argv, flag in [(["run", *base, "--checkpoint-dir", str(blocker)], "--checkpoint-dir"),
                       (["run", *base, "--publish", "--registry", str(blocker)], "--registry or cluster.registry"),
                       (["retrain", *base, "--registry", str(blocker)], "--registry or cluster.registry")]:
        assert main(argv) == 1
        assert capsys.readouterr().err.strip() == f"reprflow: error: {blocker}: not a directory ({flag})"
        assert not (tmp_path / "o").exists() and blocker.read_text() == "the user's"
