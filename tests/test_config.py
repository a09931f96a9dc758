"""Run configuration validation: defaults, and errors naming the file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprflow.components.common.errors import ConfigError
from reprflow.components.common.config import load_config, validate_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["online_retail.yaml", "tiny.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(REPO / "configs" / name)
    assert len(cfg["seeds"]) >= 3 and cfg["featurize"]["kernel"] == "cosine"


def test_defaults_fill_missing_fields() -> None:
    cfg = validate_config({"data": {"uri": "x.csv"}})
    assert cfg["pretrain"]["dim"] == 64 and cfg["seeds"] == [0, 1, 2] and cfg["data"]["max_rows"] == 0


@pytest.mark.parametrize(
    "raw, message",
    [
        ({}, "missing required field 'data.uri'"),
        ({"data": {"uri": "x"}, "pretrain": {"epochs": 0}}, "field 'pretrain.epochs' must be a positive integer, got 0"),
        ({"data": {"uri": "x"}, "pretrain": {"dims": 8}}, "unknown field 'pretrain.dims'"),
        ({"data": {"uri": "x"}, "seeds": [1, 1]}, "field 'seeds' must be a list of at least two distinct"),
        ({"data": {"uri": "x"}, "pretrain": {"device": "tpu"}}, "field 'pretrain.device' must be one of auto, cpu, cuda, got 'tpu'"),
        ({"data": {"uri": "x"}, "downstream": {"test_fraction": 1.5}}, "field 'downstream.test_fraction'"),
        ({"data": {"uri": "x"}, "extra": {}}, "unknown section 'extra'"),
        ([1, 2], "must be a mapping"),
        ({"data": {"uri": "x"}, "pretrain": 0}, "section 'pretrain' must be a mapping, got 0"),
        ({"data": {"uri": "x"}, "pretrain": []}, "section 'pretrain' must be a mapping, got []"),
        ({"data": {"uri": "x"}, "pretrain": {"dim": 8, 1: 2}}, "unknown field 'pretrain.1'"),
        ({"data": {"uri": "x"}, 1: {}}, "unknown section 1"),
        ({"data": {"uri": "x"}, "retrain": {"name": "café"}}, "field 'retrain.name' must be a name of ASCII"),
    ],
)
def test_invalid_configs_name_file_field_and_value(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(raw, "run.yaml")
    assert str(err.value).startswith("run.yaml: ") and message in str(err.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value) == f"{bad}: not valid YAML (expected ',' or ']', but got '<stream end>' at line 2, column 1)"
    bad.write_bytes(b"data: {uri: caf\xe9.csv}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not UTF-8 text \(byte 15\)"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_an_unquoted_yaml_date_is_read_as_the_date_string(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data: {uri: x.csv}\nretrain: {production_until: 2011-09-01}\n")
    assert load_config(path)["retrain"]["production_until"] == "2011-09-01"
