"""Bundles: production models as JSON predict exactly as the fitted pipelines do, and a bundle
holds what a published version needs, checked on load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from reprflow.components.common.errors import DataError
from reprflow.components.downstream_train.models import make_model, predict
from reprflow.components.package.bundle import Bundle, ids_digest, served_features
from reprflow.components.package.fetch import fetch_bundle
from reprflow.components.package.linear_model import LinearModel
from reprflow.components.featurize.fpr import FPRFeaturizer

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_linear_model_predicts_as_the_fitted_pipeline(kind: str, tmp_path: Path) -> None:
    x = RNG.normal(size=(300, 7)) * np.array([1, 10, 0.1, 1, 1, 5, 1]) + 3
    if kind == "regression":
        y = x @ RNG.normal(size=7) + RNG.normal(size=300)
    else:
        y = (x[:, 0] + x[:, 1] / 10 > 3).astype(int) + (kind == "multiclass") * (x[:, 2] > 3).astype(int)
    pipeline = make_model(kind).fit(x, y)
    names = ("alpha", "beta", "gamma")
    model = LinearModel.from_pipeline(pipeline, kind, names if kind == "multiclass" else ())
    model.save(tmp_path / "m.json")
    loaded = LinearModel.load(tmp_path / "m.json")
    test = RNG.normal(size=(50, 7)) * 3 + 3
    want = predict(pipeline, kind, test)
    got = loaded.predict(test)
    if kind == "multiclass":
        assert list(got) == [names[int(c)] for c in want]
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"takes \(n, 7\) features"):
        loaded.predict(test[:, :6])


def test_a_two_class_model_predicts_both_classes_and_its_softmax_is_the_logistic(tmp_path: Path) -> None:
    # sklearn keeps one score row for two classes; the stored model must not argmax over that one row
    x = RNG.normal(size=(300, 5))
    y = (x[:, 0] - x[:, 3] > 0.2).astype(int)
    pipeline = make_model("multiclass").fit(x, y)
    model = LinearModel.from_pipeline(pipeline, "multiclass", ("BAG", "BOX"))
    model.save(tmp_path / "m.json")
    loaded = LinearModel.load(tmp_path / "m.json")
    test = RNG.normal(size=(200, 5))
    assert list(loaded.predict(test)) == [("BAG", "BOX")[int(c)] for c in pipeline.predict(test)]
    assert set(loaded.predict(test)) == {"BAG", "BOX"}
    scores = loaded.decision(test)
    softmax = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(axis=1, keepdims=True), pipeline.predict_proba(test),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("change,message", [
    ({"kind": "pickle"}, "field 'kind' must be one of multiclass, binary, regression, got 'pickle'"),
    ({"scale": [1.0, 0.0]}, "the numbers must be finite and every scale positive"),
    ({"coef": [[1.0, "x"]]}, "fields mean, scale, coef and intercept must be arrays of numbers"),
    ({"coef": [[1.0, 2.0, 3.0]]}, r"shapes of mean \(2,\), scale \(2,\), coef \(1, 3\)"),
    ({"kind": "multiclass", "classes": ["A"], "coef": [[1.0, 2.0]]}, "field 'classes' must name at least 2 classes"),
])
def test_a_damaged_model_file_is_refused_naming_it(tmp_path: Path, change: dict, message: str) -> None:
    good = LinearModel("regression", np.zeros(2), np.ones(2), np.ones((1, 2)), np.zeros(1)).to_dict()
    path = tmp_path / "m.json"
    path.write_text(json.dumps(good | change))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: {message}"):
        LinearModel.load(path)


def test_a_model_file_of_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"schema": "pickle/0"}))
    with pytest.raises(DataError, match=f"{path}: field 'schema' must be 'reprflow.linear_model/1'"):
        LinearModel.load(path)
    path.write_text(json.dumps({"schema": "reprflow.linear_model/1", "kind": "regression", "mean": [0.0]}))
    with pytest.raises(DataError, match=f"{path}: missing field 'scale'"):
        LinearModel.load(path)


def test_served_features_are_the_seed_mean_fpr_and_the_first_seed() -> None:
    tables = RNG.normal(size=(3, 40, 5)).astype(np.float32)
    ids = [f"i{k}" for k in range(40)]
    featurizer = FPRFeaturizer(tuple(ids[:8]))
    served = served_features(tables, ids, featurizer)
    np.testing.assert_array_equal(served["raw"], tables[0])
    np.testing.assert_allclose(served["fpr_seedmean"], featurizer.transform_seeds(tables, ids).mean(0), atol=1e-6)


def write_minimal_bundle(root: Path, ids: list[str]) -> None:
    (root / "embeddings").mkdir(parents=True)
    np.save(root / "embeddings" / "embeddings.npy", RNG.normal(size=(2, len(ids), 4)).astype(np.float32))
    (root / "embeddings" / "ids.json").write_text(json.dumps(ids))
    (root / "featurizer").mkdir()
    (root / "featurizer" / "featurizer.json").write_text(json.dumps(FPRFeaturizer(tuple(ids[:3])).to_dict()))
    meta = {"schema": "reprflow.bundle/1", "name": "shop", "served_representation": "fpr_seedmean",
            "entities": {"count": len(ids), "ids_sha256": ids_digest(ids)}, "tasks": {}, "provenance": {},
            "featurizer": "featurizer/featurizer.json", "models": {}}
    (root / "bundle.json").write_text(json.dumps(meta))


def test_bundle_load_checks_schema_fields_and_files(tmp_path: Path) -> None:
    ids = [f"i{k}" for k in range(10)]
    write_minimal_bundle(tmp_path / "b", ids)
    bundle = Bundle.load(tmp_path / "b")
    assert bundle.ids == ids and bundle.tables.shape == (2, 10, 4) and bundle.features["fpr_seedmean"].shape == (10, 3)
    with pytest.raises(DataError, match="no bundle.json"):
        Bundle.load(tmp_path)
    meta = json.loads((tmp_path / "b" / "bundle.json").read_text())
    (tmp_path / "outside.json").write_text("{}")
    for change, message in (({"schema": "x/1"}, "field 'schema' must be 'reprflow.bundle/1', got 'x/1'"),
                            ({"models": {"t": {"raw": "models/t/raw.json"}}}, "names models/t/raw.json"),
                            ({"models": {"t": {"raw": "../outside.json"}}},
                             r"field 'models.t.raw' must be a path inside the bundle, got '../outside.json'"),
                            ({"featurizer": str(tmp_path / "outside.json")}, "field 'featurizer' must be a path inside"),
                            ({"models": ["m.json"]}, "field 'models' must be an object mapping each task"),
                            ({"tasks": [{"definition": {}}]}, r"field 'tasks' must be an object mapping each task"),
                            ({"entities": [10]}, r"field 'entities' must be an object \{\"count\": int"),
                            ({"provenance": "x"}, "field 'provenance' must be an object, got x"),
                            ({"name": ""}, "field 'name' must be a non-empty string")):
        (tmp_path / "b" / "bundle.json").write_text(json.dumps(meta | change))
        with pytest.raises(DataError, match=message):
            Bundle.load(tmp_path / "b")
    (tmp_path / "b" / "bundle.json").write_text("[1]")
    with pytest.raises(DataError, match="must be a JSON object, got list"):
        Bundle.load(tmp_path / "b")
    # ids that are not the ones bundle.json records are refused when first read
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(meta))
    (tmp_path / "b" / "embeddings" / "ids.json").write_text(json.dumps(ids[:-1]))
    with pytest.raises(DataError, match=r"ids.json: not the 10 entity ids whose digest bundle.json records"):
        Bundle.load(tmp_path / "b").ids


def test_fetch_bundle_by_folder_and_by_version_uri(tmp_path: Path) -> None:
    from reprflow.components.common.registry import Registry

    ids = [f"i{k}" for k in range(10)]
    write_minimal_bundle(tmp_path / "b", ids)
    assert fetch_bundle(str(tmp_path / "b"), "", "shop", str(tmp_path / "copy")) == str((tmp_path / "b").resolve())
    assert Bundle.load(tmp_path / "copy").ids == ids
    registry = Registry(tmp_path / "registry")
    version = registry.publish("shop", tmp_path / "b", {})
    assert fetch_bundle(version.uri, "", "shop", str(tmp_path / "fetched")) == version.uri
    with pytest.raises(DataError, match="no current version of 'shop'"):
        fetch_bundle("current", str(tmp_path / "registry"), "shop", str(tmp_path / "x"))
    registry.move_pointer("shop", version.version_id, registry.read_pointer("shop"))
    assert fetch_bundle("current", str(tmp_path / "registry"), "shop", str(tmp_path / "cur")) == version.uri
    with pytest.raises(DataError, match="not a bundle"):
        fetch_bundle(str(tmp_path / "nowhere"), "", "shop", str(tmp_path / "y"))
    (tmp_path / "b" / "notes").symlink_to(tmp_path / "gone")  # a copy that fails half-way leaves nothing
    with pytest.raises(DataError, match=f"{tmp_path / 'b'}: cannot copy the bundle"):
        fetch_bundle(str(tmp_path / "b"), "", "shop", str(tmp_path / "partial"))
    assert not (tmp_path / "partial").exists() and not list(tmp_path.glob(".partial*"))
