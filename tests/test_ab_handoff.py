"""A/B preparation: bundles in, a validated handoff out, or a one-line refusal and nothing written.

Bundles are built by hand from the `reprflow.bundle/1` format (bundle.json + embeddings/ids.json +
the featurizer and model files it names).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from reprflow.components.package.bundle import ids_digest
from reprflow.components.package.linear_model import LinearModel
from reprflow.components.ab_prep import handoff as handoff_mod
from reprflow.components.ab_prep.bundle import BundleError
from reprflow.components.ab_prep.comparability import NotComparable, jaccard
from reprflow.components.ab_prep.handoff import HandoffError, handoff_schema, validate_handoff
from reprflow.components.ab_prep.run import run_ab_prep
from reprflow.components.ab_prep.sample_size import two_proportions
from reprflow.components.common.config import validate_config
from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.registry import Registry

V_C = "20261123T101500.000000Z-ab12cd34ef"
V_T = "20261124T080000.000000Z-0123456789"
ROOT = "gs://bucket/registry/online-retail/versions"
LABELS = ["BAG", "HOLDER", "SIGN", "MUG"]
DEFINITION = {"test_fraction": 0.3, "split_seed": 0, "product_type_classes": 4, "labels": LABELS}


def offline(mean: float, std: float) -> dict[str, Any]:
    return {"downstream_mean": mean, "downstream_std": std, "per_seed": [mean - std, mean, mean + std],
            "churn": 0.12, "swap_mean": mean - 0.01}


def make_bundle(path: Path, *, ids: list[str] | None = None, mean: float = 0.50, std: float = 0.01,
                served: str = "fpr_seedmean", created_at: str = "2026-11-23T10:15:00Z",
                task: dict[str, Any] | None = None, edit: Any = None) -> Path:
    ids = [f"{i:05d}" for i in range(100)] if ids is None else ids
    task = task or {"kind": "multiclass", "metric": "accuracy", "definition": copy.deepcopy(DEFINITION),
                    "offline": {"fpr_seedmean": offline(mean, std), "raw": offline(mean - 0.02, 2 * std)}}
    doc = {
        "schema": "reprflow.bundle/1", "name": "online-retail", "served_representation": served,
        "entities": {"count": len(ids), "ids_sha256": ids_digest(ids)},
        "tasks": {"product_type": task,
                  "log_price": {"kind": "regression", "metric": "r2", "definition": {"test_fraction": 0.3},
                                "offline": {"fpr_seedmean": offline(0.45, 0.01), "raw": offline(0.44, 0.02)}}},
        "provenance": {"code_version": "0.1.0", "image": "reprflow:0.1.0", "config_hash": "f00dfeedf00dfeed",
                       "seeds": [0, 1, 2], "inputs": [{"uri": "gs://data/retail.csv", "generation": 1712345678},
                                                      {"uri": "/local/extra.csv", "generation": None}],
                       "created_at": created_at},
        "featurizer": "featurizer/featurizer.json",
        "models": {t: {rep: f"models/{t}/{rep}.json" for rep in ("fpr_seedmean", "raw")}
                   for t in ("product_type", "log_price")},
    }
    if edit:
        edit(doc)
    (path / "embeddings").mkdir(parents=True)
    (path / "embeddings" / "ids.json").write_text(json.dumps(ids))
    np.save(path / "embeddings" / "embeddings.npy", np.zeros((len(ids), 4), dtype=np.float32))
    (path / "featurizer").mkdir()
    (path / "featurizer" / "featurizer.json").write_text(json.dumps({"anchors": list(dict.fromkeys(ids))[:4],
                                                                         "kernel": "cosine"}))
    for t, rows, classes in (("product_type", 2, ("BAG", "MUG")), ("log_price", 1, ())):
        (path / "models" / t).mkdir(parents=True)
        model = LinearModel("multiclass" if classes else "regression", np.zeros(4), np.ones(4), np.ones((rows, 4)),
                            np.zeros(rows), classes)
        for rep in ("fpr_seedmean", "raw"):
            model.save(path / "models" / t / f"{rep}.json")
    (path / "bundle.json").write_text(json.dumps(doc, indent=2))
    return path


def config(**ab: Any) -> dict[str, Any]:
    return validate_config({"data": {"uri": "data.csv"}, "ab": {"baseline_rate": 0.05, **ab}})


@pytest.fixture
def arms(tmp_path: Path) -> tuple[Path, Path]:
    return (make_bundle(tmp_path / "control", mean=0.50),
            make_bundle(tmp_path / "treatment", mean=0.53, std=0.01, created_at="2026-11-24T08:00:00Z"))


def assert_nothing_written(out: Path, before: set[str] | None = None) -> None:
    assert not out.exists()
    leftovers = {p.name for p in out.parent.iterdir()} - (before or set())
    assert not any(n.startswith(f".{out.name}") for n in leftovers), leftovers


# -- the valid case ----------------------------------------------------------------------------------


def test_valid_handoff_is_written_validated_and_has_the_numbers(arms: tuple[Path, Path], tmp_path: Path) -> None:
    c, t = arms
    out = tmp_path / "out" / "handoff"
    doc = run_ab_prep(c, t, config(), out, f"{ROOT}/{V_C}", f"{ROOT}/{V_T}")
    assert sorted(p.name for p in out.iterdir()) == ["handoff.html", "handoff.json", "handoff.md"]
    on_disk = json.loads((out / "handoff.json").read_text())
    assert on_disk == json.loads(json.dumps(doc))
    validate_handoff(on_disk)
    Draft202012Validator.check_schema(handoff_schema())
    Draft202012Validator(handoff_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER).validate(on_disk)

    assert on_disk["schema"] == "reprflow.handoff/1"
    assert on_disk["control"]["version_id"] == V_C and on_disk["treatment"]["version_id"] == V_T
    assert on_disk["treatment"]["model_uri"] == f"{ROOT}/{V_T}/models/product_type/fpr_seedmean.json"
    assert on_disk["control"]["featurizer_uri"] == f"{ROOT}/{V_C}/featurizer/featurizer.json"
    assert on_disk["task"]["offline"]["treatment"]["per_seed"] == [0.52, 0.53, 0.54]
    rel = (0.53 - 0.50) / 0.50
    assert on_disk["effect"]["relative"] == pytest.approx(rel) and on_disk["effect"]["absolute"] == pytest.approx(0.03)
    assert on_disk["primary_metric"]["expected_treatment_rate"] == pytest.approx(0.05 * (1 + rel))
    n = two_proportions(0.05, 0.05 * (1 + rel), 0.05, 0.8, 0.5)
    s = on_disk["sample_size"]
    assert (s["control"], s["treatment"], s["total"]) == (n.control, n.treatment, n.total)
    assert [ch["check"] for ch in on_disk["comparability"]] == [
        "distinct_versions", "entity_overlap", "task_definition", "offline_effect"]
    assert any("p_c = 0.05" in a for a in on_disk["assumptions"])
    assert any("0.5000 -> 0.5300 (+6.00%)" in a for a in on_disk["assumptions"])

    page = (out / "handoff.html").read_text()
    assert "<script" not in page.lower() and "data:image/png;base64," in page
    assert re.search(r"\b(src|href)=\"(https?:)?//", page) is None  # nothing external
    for text in (f"{n.control:,}", f"{n.total:,}", "+6.00%", "0.5300", V_T, "conversion_rate"):
        assert text in page
    md = (out / "handoff.md").read_text()
    assert f"{n.control:,}" in md and "+6.00%" in md and "## Assumptions" in md


def test_unequal_split_and_raw_served(tmp_path: Path) -> None:
    c = make_bundle(tmp_path / "c", mean=0.50)
    t = make_bundle(tmp_path / "t", mean=0.40, std=0.01, served="raw")  # raw offline mean 0.38: a drop
    doc = run_ab_prep(c, t, config(traffic_split=0.2, power=0.9, alpha=0.01), tmp_path / "out")
    n = two_proportions(0.05, 0.05 * (1 + (0.38 - 0.50) / 0.50), 0.01, 0.9, 0.2)
    assert (doc["sample_size"]["control"], doc["sample_size"]["treatment"]) == (n.control, n.treatment)
    assert doc["treatment"]["served_representation"] == "raw" and doc["control"]["version_id"] is None
    assert doc["design"]["traffic_split"] == {"control": 0.8, "treatment": 0.2}  # not 0.8000000000000000444
    assert any("worse than control offline" in a for a in doc["assumptions"])


def test_bundles_fetched_from_a_registry_carry_their_version(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    prov = {"code_version": "0.1.0"}
    vc = registry.publish("online-retail", make_bundle(tmp_path / "c", mean=0.50), prov)
    vt = registry.publish("online-retail", make_bundle(tmp_path / "t", mean=0.55), prov)
    fc = registry.fetch("online-retail", vc.version_id, tmp_path / "fc")
    ft = registry.fetch("online-retail", vt.version_id, tmp_path / "ft")
    doc = run_ab_prep(fc, ft, config(), tmp_path / "out", vc.uri, vt.uri)
    assert (doc["control"]["version_id"], doc["treatment"]["version_id"]) == (vc.version_id, vt.version_id)
    assert doc["control"]["uri"] == vc.uri
    # without URIs the fetched MANIFEST.json still names the versions
    doc = run_ab_prep(fc, ft, config(), tmp_path / "out2")
    assert (doc["control"]["uri"], doc["treatment"]["version_id"]) == (vc.uri, vt.version_id)
    # the same version fetched twice is refused
    registry.fetch("online-retail", vc.version_id, tmp_path / "fc2")
    with pytest.raises(NotComparable, match="distinct_versions: .*same version: both name"):
        run_ab_prep(fc, tmp_path / "fc2", config(), tmp_path / "out3")
    assert_nothing_written(tmp_path / "out3")


# -- refusals ----------------------------------------------------------------------------------------


def _defn(**changes: Any) -> dict[str, Any]:
    return {"kind": "multiclass", "metric": "accuracy", "definition": {**DEFINITION, **changes},
            "offline": {"fpr_seedmean": offline(0.55, 0.01), "raw": offline(0.5, 0.01)}}


REFUSALS = {
    "entity_overlap": (
        {"ids": [f"{i:05d}" for i in range(50, 150)], "mean": 0.55},
        ["entity_overlap", "different entity universes", "Jaccard overlap of the entity ids 0.3333 < "
         "min_entity_overlap 0.9", "100 ids", "50 shared"]),
    "definition_field": (
        {"task": _defn(test_fraction=0.2)},
        ["task_definition", "field 'tasks.product_type.definition.test_fraction' is 0.3 in control and 0.2 "
                            "in treatment"]),
    "definition_labels": (
        {"task": _defn(labels=["BAG", "HOLDER", "SIGN", "CARD"])},
        ["field 'tasks.product_type.definition.labels' is [\"BAG\", \"HOLDER\", \"SIGN\", \"MUG\"] in control "
         "and [\"BAG\", \"HOLDER\", \"SIGN\", \"CARD\"] in treatment"]),
    "kind_and_metric": (
        {"task": {**_defn(), "kind": "binary", "metric": "auc"}},
        ["field 'tasks.product_type.kind' is \"multiclass\" in control and \"binary\" in treatment",
         "field 'tasks.product_type.metric' is \"accuracy\" in control and \"auc\" in treatment"]),
    "task_missing": (
        {"edit": lambda d: d["tasks"].pop("product_type")},
        ["task_definition", "has no task 'product_type' (bundle.json field 'tasks' has: log_price)"]),
    "seed_noise": (
        {"mean": 0.505, "std": 0.01},
        ["offline_effect", "mean 0.505 is within its own seed noise of control", "mean 0.5:",
         "|difference| 0.005 <= treatment seed std 0.01"]),
    "seed_noise_equal": (
        {"mean": 0.50, "std": 0.0},
        ["offline_effect", "|difference| 0 <= treatment seed std 0"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_name_both_bundles_and_values_and_write_nothing(case: str, tmp_path: Path) -> None:
    kwargs, expected = REFUSALS[case]
    c = make_bundle(tmp_path / "control", mean=0.50)
    t = make_bundle(tmp_path / "treatment", created_at="2026-11-24T08:00:00Z", **kwargs)
    out = tmp_path / "handoff"
    with pytest.raises(NotComparable) as err:
        run_ab_prep(c, t, config(), out, f"{ROOT}/{V_C}", f"{ROOT}/{V_T}")
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, ReprflowError)
    assert f"control {ROOT}/{V_C} and treatment {ROOT}/{V_T} are not comparable" in msg
    for text in expected:
        assert text in msg, (text, msg)
    assert [ch["check"] for ch in err.value.checks if not ch["passed"]]  # the checks come with the error
    assert_nothing_written(out)


@pytest.mark.parametrize("how", ["same_directory", "same_uri", "same_version_id", "identical_bundle"])
def test_same_version_is_refused(how: str, tmp_path: Path) -> None:
    c = make_bundle(tmp_path / "c", mean=0.50)
    t = c if how == "same_directory" else make_bundle(
        tmp_path / "t", mean=0.50 if how == "identical_bundle" else 0.60,
        created_at="2026-11-23T10:15:00Z" if how == "identical_bundle" else "2026-11-25T00:00:00Z")
    uris = {"same_uri": (f"{ROOT}/{V_C}", f"{ROOT}/{V_C}/"),
            "same_version_id": (f"{ROOT}/{V_C}", f"gs://mirror/registry/online-retail/versions/{V_C}")}
    cu, tu = uris.get(how, (None, None))
    with pytest.raises(NotComparable, match=r"distinct_versions: control .* and treatment .* are the same version"):
        run_ab_prep(c, t, config(), tmp_path / "out", cu, tu)
    assert_nothing_written(tmp_path / "out")


def test_all_failing_reasons_in_one_line(tmp_path: Path) -> None:
    c = make_bundle(tmp_path / "c", mean=0.50)
    t = make_bundle(tmp_path / "t", ids=[f"x{i}" for i in range(10)], mean=0.501, task=_defn(split_seed=1),
                    created_at="2026-11-25T00:00:00Z")
    with pytest.raises(NotComparable) as err:
        run_ab_prep(c, t, config(), tmp_path / "out")
    msg = str(err.value)
    assert "\n" not in msg
    assert "entity_overlap:" in msg and "task_definition:" in msg and "split_seed" in msg
    assert "Jaccard overlap of the entity ids 0.0000" in msg


def test_a_refusal_leaves_an_earlier_handoff_alone(arms: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "handoff"
    out.mkdir()
    (out / "handoff.json").write_text("earlier")
    c, _ = arms
    with pytest.raises(NotComparable):
        run_ab_prep(c, c, config(), out)
    assert (out / "handoff.json").read_text() == "earlier" and list(out.iterdir()) == [out / "handoff.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control", "handoff", "treatment"]


def test_jaccard() -> None:
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard({"a"}, {"a"}) == 1.0 and jaccard(set(), {"a"}) == 0.0


def test_overlap_threshold_is_inclusive(tmp_path: Path) -> None:
    c = make_bundle(tmp_path / "c", ids=[str(i) for i in range(10)])
    t = make_bundle(tmp_path / "t", ids=[str(i) for i in range(1, 10)], mean=0.6)  # Jaccard 0.9
    doc = run_ab_prep(c, t, config(min_entity_overlap=0.9), tmp_path / "out")
    assert "0.9000 >= min_entity_overlap 0.9" in doc["comparability"][1]["detail"]


# -- effects that cannot be turned into a rate ------------------------------------------------------


def test_treatment_rate_outside_the_unit_interval_is_refused(tmp_path: Path) -> None:
    c = make_bundle(tmp_path / "c", mean=0.30)
    t = make_bundle(tmp_path / "t", mean=0.70)
    with pytest.raises(HandoffError, match=r"ab.baseline_rate 0.6 .* treatment rate 1.4 outside \(0, 1\)"):
        run_ab_prep(c, t, config(baseline_rate=0.6), tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_non_positive_control_metric_has_no_relative_effect(tmp_path: Path) -> None:
    c = make_bundle(tmp_path / "c", edit=lambda d: d["tasks"]["log_price"]["offline"].update(
        fpr_seedmean=offline(-0.05, 0.01)))
    t = make_bundle(tmp_path / "t", mean=0.6)
    with pytest.raises(HandoffError, match=r"'tasks.log_price.offline.fpr_seedmean.downstream_mean' is -0.05"):
        run_ab_prep(c, t, config(task="log_price"), tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


# -- the schema ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("valid")
    c, t = make_bundle(root / "c", mean=0.50), make_bundle(root / "t", mean=0.53)
    return run_ab_prep(c, t, config(), root / "out", f"{ROOT}/{V_C}", f"{ROOT}/{V_T}")


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("sample_size"), "(top level)"),
    (lambda d: d.update(extra=1), "(top level)"),
    (lambda d: d["control"].pop("model_uri"), "control"),
    (lambda d: d["control"].update(notes="x"), "control"),
    (lambda d: d["treatment"]["provenance"].update(user="me"), "treatment.provenance"),
    (lambda d: d["task"]["offline"]["control"].update(median=0.5), "task.offline.control"),
    (lambda d: d.update(schema="reprflow.handoff/2"), "schema"),
    (lambda d: d.update(created_at="yesterday"), "created_at"),
    (lambda d: d["design"].update(alpha=1.0), "design.alpha"),
    (lambda d: d["sample_size"].update(control=0), "sample_size.control"),
    (lambda d: d["comparability"][3].update(passed=False), "comparability.3.passed"),
    (lambda d: d["control"].update(version_id="v1"), "control.version_id"),
    (lambda d: d["sample_size"].update(total=1 + d["sample_size"]["total"]), "sample_size.total"),
    (lambda d: d["design"]["traffic_split"].update(control=0.6), "design.traffic_split"),
])
def test_schema_rejects(valid_doc: dict[str, Any], mutate: Any, field: str, tmp_path: Path) -> None:
    doc = copy.deepcopy(valid_doc)
    mutate(doc)
    with pytest.raises(HandoffError) as err:
        validate_handoff(doc)
    assert f"handoff field '{field}'" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(HandoffError):  # and an invalid handoff is never written
        handoff_mod.write_handoff(doc, tmp_path / "bad")
    assert_nothing_written(tmp_path / "bad")


def test_a_failure_while_writing_leaves_nothing(arms: tuple[Path, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real = handoff_mod.write_json

    def write_then_fail(path: Path, obj: Any) -> None:
        real(path, obj)
        raise OSError("disk full")

    monkeypatch.setattr(handoff_mod, "write_json", write_then_fail)
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(OSError, match="disk full"):
        run_ab_prep(*arms, config(), tmp_path / "out")
    assert_nothing_written(tmp_path / "out", before)


# -- malformed bundles ------------------------------------------------------------------------------


def _drop(*keys: str) -> Any:
    def edit(d: dict[str, Any]) -> None:
        cur = d
        for k in keys[:-1]:
            cur = cur[k]
        del cur[keys[-1]]
    return edit


MALFORMED = {
    "wrong_schema": (lambda d: d.update(schema="reprflow.bundle/2"),
                     "field 'schema' must be 'reprflow.bundle/1', got 'reprflow.bundle/2'"),
    "missing_count": (_drop("entities", "count"), "missing field 'entities.count'"),
    "bad_served": (lambda d: d.update(served_representation="concat"),
                   "field 'served_representation' must be one of fpr_seedmean, raw, got 'concat'"),
    "missing_offline_rep": (_drop("tasks", "product_type", "offline", "fpr_seedmean"),
                            "missing field 'tasks.product_type.offline.fpr_seedmean'"),
    "bad_per_seed": (lambda d: d["tasks"]["product_type"]["offline"]["fpr_seedmean"].update(per_seed=[]),
                     "field 'tasks.product_type.offline.fpr_seedmean.per_seed' must be a non-empty list of numbers"),
    "missing_model": (_drop("models", "product_type"), "missing field 'models.product_type.fpr_seedmean'"),
    "escaping_model": (lambda d: d["models"]["product_type"].update(fpr_seedmean="../x.json"),
                       "field 'models.product_type.fpr_seedmean' must be a path inside the bundle"),
    "count_mismatch": (lambda d: d["entities"].update(count=99),
                       "field 'entities.count' is 99 but"),
    "bad_sha": (lambda d: d["entities"].update(ids_sha256="abc"), "field 'entities.ids_sha256' must be"),
    "other_ids_sha": (lambda d: d["entities"].update(ids_sha256="0" * 64), "field 'entities.ids_sha256' is 000"),
    "naive_created_at": (lambda d: d["provenance"].update(created_at="2026-11-23 10:15"),
                         "field 'provenance.created_at' must be an ISO 8601 date-time"),
    "missing_provenance": (_drop("provenance", "config_hash"), "missing field 'provenance.config_hash'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_bundle_names_file_and_field(case: str, tmp_path: Path) -> None:
    edit, expected = MALFORMED[case]
    c = make_bundle(tmp_path / "c")
    t = make_bundle(tmp_path / "t", mean=0.6, edit=edit)
    with pytest.raises(BundleError) as err:
        run_ab_prep(c, t, config(), tmp_path / "out")
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "t" / "bundle.json")) and expected in msg and "\n" not in msg, msg
    assert_nothing_written(tmp_path / "out")


def test_missing_or_broken_files(tmp_path: Path) -> None:
    good = make_bundle(tmp_path / "good")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match=r"empty/bundle.json: missing; the treatment bundle has no bundle.json"):
        run_ab_prep(good, empty, config(), tmp_path / "out")
    with pytest.raises(BundleError, match=r"nowhere: the control bundle is not a directory"):
        run_ab_prep(tmp_path / "nowhere", good, config(), tmp_path / "out")
    broken = make_bundle(tmp_path / "broken")
    (broken / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"broken/bundle.json: not valid JSON"):
        run_ab_prep(good, broken, config(), tmp_path / "out")
    no_ids = make_bundle(tmp_path / "no_ids")
    (no_ids / "embeddings" / "ids.json").unlink()
    with pytest.raises(BundleError, match=r"no_ids/embeddings/ids.json: missing"):
        run_ab_prep(good, no_ids, config(), tmp_path / "out")
    dup = make_bundle(tmp_path / "dup", ids=["a", "b", "a"])
    with pytest.raises(BundleError, match=r"dup/embeddings/ids.json: entity id 'a' appears more than once"):
        run_ab_prep(good, dup, config(), tmp_path / "out")
    no_model = make_bundle(tmp_path / "no_model")
    (no_model / "models" / "product_type" / "fpr_seedmean.json").unlink()
    with pytest.raises(BundleError, match=r"field 'models.product_type.fpr_seedmean' names "
                                          r"'models/product_type/fpr_seedmean.json', which is not in the bundle"):
        run_ab_prep(good, no_model, config(), tmp_path / "out")
    for rel, message in [("models/product_type/fpr_seedmean.json", "not valid JSON"),
                         ("featurizer/featurizer.json", "not valid JSON")]:
        cut = make_bundle(tmp_path / rel.replace("/", "_"))
        text = (cut / rel).read_text()
        (cut / rel).write_text(text[: len(text) // 2])  # a truncated copy
        with pytest.raises(ReprflowError, match=rf"{re.escape(str(cut / rel))}: {message}"):
            run_ab_prep(good, cut, config(), tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_manifest_that_contradicts_the_uri(tmp_path: Path) -> None:
    c = make_bundle(tmp_path / "c")
    t = make_bundle(tmp_path / "t", mean=0.6)
    (t / "MANIFEST.json").write_text(json.dumps({"version": V_C, "uri": f"{ROOT}/{V_C}"}))
    with pytest.raises(BundleError, match=rf"t/MANIFEST.json: field 'version' is '{V_C}' but the treatment URI"):
        run_ab_prep(c, t, config(), tmp_path / "out", None, f"{ROOT}/{V_T}")


# -- the component ------------------------------------------------------------------------------------


def test_component_interface() -> None:
    from reprflow.components.ab_prep.component import ab_prep

    spec = ab_prep.component_spec
    assert set(spec.inputs) == {"control", "treatment", "control_uri", "treatment_uri", "config"}
    assert set(spec.outputs) == {"handoff", "page", "markdown"}
    assert spec.outputs["page"].type == "system.HTML@0.0.1" and spec.outputs["markdown"].type == "system.Markdown@0.0.1"
