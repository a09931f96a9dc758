"""Run configurations: YAML files validated on load against one declared schema."""

from __future__ import annotations

import copy
import datetime
import re
from pathlib import Path
from typing import Any

import yaml

from reprflow.components.common.errors import ConfigError
from reprflow.components.common.profiles import DEFAULT_RESOURCES, PROFILES, STAGES
from reprflow.components.common.storage import looks_like_broken_gcs_uri

# field -> (type check, description of what is allowed, default). A default of REQUIRED must be given.
REQUIRED = object()
TASKS = ("product_type", "log_price", "repeat_purchase")  # components/common/tasks.py
SERVED = ("fpr_seedmean", "raw")  # representations a published version serves (its models' features)


def _integral(v: Any) -> Any:
    """KFP passes dict parameters as protobuf Structs, whose numbers are all floats: 16 -> 16.0.
    YAML reads an unquoted 2011-09-01 as a date; the configuration holds it as the string."""
    if isinstance(v, datetime.date):
        return v.isoformat()
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _pos_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1


def _seeds(v: Any) -> bool:
    return (
        isinstance(v, list)
        and len(v) >= 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v)
        and len(set(v)) == len(v)
    )


def _gcs_or_empty(v: Any) -> bool:
    return isinstance(v, str) and (v == "" or (v.startswith("gs://") and len(v.rstrip("/")) > len("gs://")))


def _resources(v: Any) -> bool:
    return isinstance(v, dict) and set(v) <= set(STAGES) and all(p in PROFILES for p in v.values())


def _nonneg(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def _date(v: Any) -> bool:
    try:
        datetime.date.fromisoformat(v)
    except (TypeError, ValueError):
        return False
    return True


def _pos_ints(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(_pos_int(x) for x in v) and len(set(v)) == len(v)


SCHEMA: dict[str, dict[str, tuple[Any, str, Any]]] = {
    "data": {
        "uri": (lambda v: isinstance(v, str) and v != "", "a path or gs:// URI", REQUIRED),
        "min_item_count": (_pos_int, "a positive integer", 5),
        # 0 reads every row. (Not null: KFP parameters cannot hold null values.)
        "max_rows": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer", 0),
    },
    "seeds": {"": (_seeds, "a list of at least two distinct non-negative integers", [0, 1, 2])},
    "pretrain": {
        "dim": (_pos_int, "a positive integer", 64),
        "window": (_pos_int, "a positive integer", 5),
        "epochs": (_pos_int, "a positive integer", 5),
        "negatives": (_pos_int, "a positive integer", 5),
        "batch_size": (_pos_int, "a positive integer", 4096),
        "learning_rate": (_pos_num, "a positive number", 0.005),
        "checkpoint_every": (_pos_int, "a positive integer (steps)", 500),
        "device": (lambda v: v in ("auto", "cpu", "cuda"), "one of auto, cpu, cuda", "auto"),
    },
    "featurize": {
        "anchors": (_pos_int, "a positive integer", 256),
        "kernel": (lambda v: v in ("cosine", "dot", "rbf"), "one of cosine, dot, rbf", "cosine"),
        "anchor_rule": (lambda v: v in ("frequency", "kmeans++"), "one of frequency, kmeans++", "frequency"),
        "seed_spread": (lambda v: isinstance(v, bool), "true or false", False),
        "quantile_bins": (lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == 0 or v >= 2),
                          "0 (off) or an integer of at least 2", 0),
        # also score the whole featurizer family (featurize/variants.py) in the run's report
        "compare_variants": (lambda v: isinstance(v, bool), "true or false", False),
    },
    "evaluate": {"knn_k": (_pos_int, "a positive integer", 10)},
    # Model selection (`reprflow select`): the grid of candidate embeddings, dims x windows x negatives.
    "selection": {
        "dims": (_pos_ints, "a non-empty list of distinct positive integers", [16, 32, 64]),
        "windows": (_pos_ints, "a non-empty list of distinct positive integers", [2, 5, 10]),
        "negatives": (_pos_ints, "a non-empty list of distinct positive integers", [5]),
        "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer", 0),
    },
    # Where a cluster run keeps its artifacts; not part of what a run computes (see provenance).
    "cluster": {
        "pipeline_root": (_gcs_or_empty, "'' (the server's default) or a gs://bucket/prefix URI", ""),
        "registry": (lambda v: isinstance(v, str) and not looks_like_broken_gcs_uri(v),
                     "a local path or a gs://bucket/prefix URI ('' = none)", ""),
    },
    # Stage -> resource profile on a cluster (components/common/profiles.py); `default` for the rest.
    "resources": {"": (
        _resources,
        f"a mapping from stages ({', '.join(STAGES)}) to profiles ({', '.join(PROFILES)})",
        DEFAULT_RESOURCES,
    )},
    # Triggered retraining (`reprflow retrain`, the retrain pipeline) and its promotion gate.
    "retrain": {
        "name": (lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9-]+", v) is not None,
                 "a name of ASCII letters, digits and -", "online-retail"),
        "representation": (lambda v: v in SERVED, f"one of {', '.join(SERVED)}", "fpr_seedmean"),
        # a task may be worse than production by at most this many seed stds (the larger of the two)
        "max_regression_in_stds": (_nonneg, "a non-negative number", 1.0),
        # the median relative change of the served features of the entities both versions know
        "max_feature_drift": (_pos_num, "a positive number", 0.5),
        "production_until": (_date, "a date YYYY-MM-DD", "2011-09-01"),  # local demo: the time split
    },
    # A/B experiment preparation (`reprflow ab-prep`).
    "ab": {
        "task": (lambda v: v in TASKS, f"one of {', '.join(TASKS)}", "product_type"),
        "primary_metric": (lambda v: isinstance(v, str) and v != "", "a metric name", "conversion_rate"),
        "baseline_rate": (_fraction, "a number strictly between 0 and 1", 0.05),
        "alpha": (_fraction, "a number strictly between 0 and 1", 0.05),
        "power": (_fraction, "a number strictly between 0 and 1", 0.8),
        "traffic_split": (_fraction, "the treatment's share of traffic, strictly between 0 and 1", 0.5),
        "min_entity_overlap": (lambda v: _nonneg(v) and v <= 1, "a number from 0 to 1", 0.9),
    },
    # New-data trigger: GCS object-finalize notifications (Pub/Sub push) that start a retrain run.
    "trigger": {
        "bucket": (lambda v: isinstance(v, str), "a bucket name ('' = none)", ""),
        "prefix": (lambda v: isinstance(v, str), "an object-name prefix, e.g. incoming/", "incoming/"),
        "marker": (lambda v: isinstance(v, str) and v != "" and "/" not in v, "an object name without /",
                   "_SUCCESS"),
        "experiment": (lambda v: isinstance(v, str) and v != "", "an experiment name", "retrain"),
    },
    "downstream": {
        "test_fraction": (_fraction, "a number strictly between 0 and 1", 0.3),
        "split_seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", 0),
        "product_type_classes": (
            lambda v: _pos_int(v) and v >= 2,
            "an integer of at least 2",
            15,
        ),
        # The class names; empty: the product_type_classes most frequent words. A retrain pins
        # production's, so both versions are measured on the same task.
        "product_type_labels": (
            lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v) and len(set(v)) == len(v)
            and len(v) != 1,
            "a list of distinct class names (empty: derived from the data)",
            [],
        ),
    },
}


def validate_config(raw: Any, source: str = "<config>") -> dict[str, Any]:
    """Fill defaults and check every field; ConfigError names the source, the field and the value."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SCHEMA), key=str)
    if unknown:
        raise ConfigError(f"{source}: unknown section {unknown[0]!r} (known: {', '.join(SCHEMA)})")
    config: dict[str, Any] = {}
    for section, fields in SCHEMA.items():
        if "" in fields:  # a scalar or list at the top level
            check, allowed, default = fields[""]
            value = copy.deepcopy(raw.get(section, default))
            value = [_integral(v) for v in value] if isinstance(value, list) else value
            if not check(value):
                raise ConfigError(f"{source}: field '{section}' must be {allowed}, got {value!r}")
            config[section] = value
            continue
        given = raw.get(section)
        given = {} if given is None else given
        if not isinstance(given, dict):
            raise ConfigError(f"{source}: section '{section}' must be a mapping, got {given!r}")
        unknown = sorted(set(given) - set(fields), key=str)
        if unknown:
            raise ConfigError(
                f"{source}: unknown field '{section}.{unknown[0]}' (known: {', '.join(fields)})"
            )
        out: dict[str, Any] = {}
        for name, (check, allowed, default) in fields.items():
            if name not in given and default is REQUIRED:
                raise ConfigError(f"{source}: missing required field '{section}.{name}'")
            value = copy.deepcopy(given.get(name, default))
            coerced = [_integral(x) for x in value] if isinstance(value, list) else _integral(value)
            if not check(value) and check(coerced):
                value = coerced
            if not check(value):
                raise ConfigError(f"{source}: field '{section}.{name}' must be {allowed}, got {value!r}")
            out[name] = value
        config[section] = out
    return config


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's problem and where, without its multi-line excerpt of the file."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a YAML run configuration."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({_one_line(exc)})") from None
    return validate_config(raw, str(path))
