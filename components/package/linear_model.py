"""Production downstream models as data: standardisation + a linear model, stored as JSON.

A served model must load without executing anything, so it is never a pickle: the fitted
StandardScaler + LogisticRegression / Ridge pipeline (downstream_train.models.make_model) is kept
as its numbers and predicts with NumPy alone:

    z = (x - mean) / scale
    regression:  y = z w + b
    binary:      P(y = 1) = sigma(z w + b)
    multiclass:  class = names[argmax_c (z W_c + b_c)]    (softmax is monotone)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from reprflow.components.common.artifacts import read_json
from reprflow.components.common.errors import DataError

SCHEMA = "reprflow.linear_model/1"
KINDS = ("multiclass", "binary", "regression")


@dataclass(frozen=True)
class LinearModel:
    kind: str  # multiclass | binary | regression
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    coef: np.ndarray  # (C, D); C = 1 for binary and regression
    intercept: np.ndarray  # (C,)
    classes: tuple[str, ...] = ()  # multiclass: the class name of each row of coef

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, kind: str, class_names: tuple[str, ...] = ()) -> LinearModel:
        """From a fitted make_model() pipeline; `class_names[i]` names integer label i (multiclass)."""
        scaler, model = pipeline[0], pipeline[-1]
        coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
        classes = tuple(class_names[int(c)] for c in model.classes_) if kind == "multiclass" else ()
        if kind == "multiclass" and coef.shape[0] == 1:
            # Two classes: sklearn keeps one score s for the second class. Rows (-s/2, s/2) give the
            # same argmax (ties to the first class, as sklearn's s > 0) and softmax = sigmoid(s).
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        return cls(kind, scaler.mean_.astype(np.float64), scaler.scale_.astype(np.float64), coef, intercept, classes)

    def decision(self, x: np.ndarray) -> np.ndarray:
        """(n, C) linear scores of features (n, D)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"the model takes (n, {self.mean.shape[0]}) features, got {x.shape}")
        return ((x - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class names (multiclass), P(y = 1) (binary) or values (regression), per row."""
        scores = self.decision(x)
        if self.kind == "multiclass":
            return np.asarray(self.classes, dtype=object)[np.argmax(scores, axis=1)]
        if self.kind == "binary":
            return 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return scores[:, 0]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "kind": self.kind, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept.tolist(), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: Any, source: str = "<model>") -> LinearModel:
        if not isinstance(d, dict):
            raise DataError(f"{source}: must be a JSON object, got {type(d).__name__}")
        if d.get("schema") != SCHEMA:
            raise DataError(f"{source}: field 'schema' must be {SCHEMA!r}, got {d.get('schema')!r}")
        missing = [k for k in ("kind", "mean", "scale", "coef", "intercept", "classes") if k not in d]
        if missing:
            raise DataError(f"{source}: missing field '{missing[0]}'")
        if d["kind"] not in KINDS:
            raise DataError(f"{source}: field 'kind' must be one of {', '.join(KINDS)}, got {d['kind']!r}")
        try:
            mean, scale, coef, intercept = (np.array(d[k], dtype=np.float64) for k in ("mean", "scale", "coef",
                                                                                      "intercept"))
        except (TypeError, ValueError):
            raise DataError(f"{source}: fields mean, scale, coef and intercept must be arrays of numbers") from None
        rows = len(d["classes"]) if d["kind"] == "multiclass" else 1
        dim = mean.shape[0] if mean.ndim == 1 else -1
        if dim < 1 or scale.shape != (dim,) or coef.shape != (rows, dim) or intercept.shape != (rows,):
            raise DataError(f"{source}: shapes of mean {mean.shape}, scale {scale.shape}, coef {coef.shape} and "
                            f"intercept {intercept.shape} do not fit {rows} output(s) of one width")
        if not all(np.isfinite(a).all() for a in (mean, scale, coef, intercept)) or not (scale > 0).all():
            raise DataError(f"{source}: the numbers must be finite and every scale positive")
        if d["kind"] == "multiclass" and (rows < 2 or not all(isinstance(c, str) for c in d["classes"])):
            raise DataError(f"{source}: field 'classes' must name at least 2 classes, got {d['classes']!r}")
        return cls(d["kind"], mean, scale, coef, intercept, tuple(d["classes"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        return cls.from_dict(read_json(path), str(path))
