"""Downstream models and their scores: what a team would train on top of an embedding.

multiclass and binary: standardised features + L2 logistic regression (C = 1);
regression: standardised features + ridge (alpha = 1). Neither is invariant to a rotation of the
features (the L2 penalty and the per-coordinate scaling are not), which is the point: they show
what a change of embedding seed does to a real downstream model.
"""

from __future__ import annotations

from itertools import combinations, permutations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def make_model(kind: str) -> Pipeline:
    if kind == "regression":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    if kind in ("multiclass", "binary"):
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    raise ValueError(f"unknown task kind {kind!r}")


def predict(model: Pipeline, kind: str, x: np.ndarray) -> np.ndarray:
    """Class labels (multiclass), P(y = 1) (binary) or values (regression)."""
    if kind == "binary":
        return model.predict_proba(x)[:, 1]
    return model.predict(x)


def predict_average(models: list[Pipeline], kind: str, xs: list[np.ndarray]) -> np.ndarray:
    """An ensemble's prediction: member i sees xs[i]; probabilities (or values) are averaged."""
    if kind == "multiclass":
        proba = np.mean([m.predict_proba(x) for m, x in zip(models, xs)], axis=0)
        return models[0].classes_[np.argmax(proba, axis=1)]
    if kind == "binary":
        return np.mean([m.predict_proba(x)[:, 1] for m, x in zip(models, xs)], axis=0)
    return np.mean([m.predict(x) for m, x in zip(models, xs)], axis=0)


def score(kind: str, y: np.ndarray, pred: np.ndarray) -> float:
    if kind == "multiclass":
        return float(accuracy_score(y, pred))
    if kind == "binary":
        return float(roc_auc_score(y, pred))
    return float(r2_score(y, pred))


def churn(kind: str, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
    """How much two models' test predictions differ.

    multiclass: fraction of entities whose predicted class changes; binary: fraction whose
    decision at 0.5 flips; regression: RMS of the prediction difference over the std of y.
    """
    if kind == "multiclass":
        return float(np.mean(a != b))
    if kind == "binary":
        return float(np.mean((a >= 0.5) != (b >= 0.5)))
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.std(y))


def _study(kind: str, preds: list[np.ndarray], swapped: list[float], test_y: np.ndarray) -> dict:
    scores = np.array([score(kind, test_y, p) for p in preds])
    churns = [churn(kind, preds[i], preds[j], test_y) for i, j in combinations(range(len(preds)), 2)]
    return {
        "per_seed": scores.tolist(),
        "downstream_mean": float(scores.mean()),
        "downstream_std": float(scores.std(ddof=1)) if len(scores) > 1 else 0.0,
        "churn": float(np.mean(churns)),
        "swap_mean": float(np.mean(swapped)),
        "swap": [float(v) for v in swapped],
    }


def seed_study(kind: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict:
    """Retrain and swap stability over K seeds of one representation.

    train_x: (K, n_train, D), test_x: (K, n_test, D). One model per seed k, trained on seed k.
    Retrain: the test metric's mean and std over seeds, mean churn over seed pairs.
    Swap: model k served seed j's test features (j != k) without retraining, every ordered pair.
    """
    models = [make_model(kind).fit(x, train_y) for x in train_x]
    preds = [predict(m, kind, x) for m, x in zip(models, test_x)]
    swapped = [score(kind, test_y, predict(models[i], kind, test_x[j])) for i, j in permutations(range(len(models)), 2)]
    return _study(kind, preds, swapped, test_y)


def ensemble_study(kind: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict:
    """The seed ensemble on raw tables: one model per seed, predictions averaged.

    With K seeds, K leave-one-seed-out ensembles of K-1 members stand for retrains. Swap: the
    ensemble without seed k has every member served seed k's table, a seed none of them saw.
    """
    k = train_x.shape[0]
    models = [make_model(kind).fit(x, train_y) for x in train_x]
    preds, swapped = [], []
    for out in range(k):
        members = [i for i in range(k) if i != out]
        ensemble = [models[i] for i in members]
        preds.append(predict_average(ensemble, kind, [test_x[i] for i in members]))
        swapped.append(score(kind, test_y, predict_average(ensemble, kind, [test_x[out]] * len(members))))
    return _study(kind, preds, swapped, test_y)
