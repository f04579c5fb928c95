# ruff: noqa: RUF002  (formulas are written with their mathematical symbols)
"""Classification and regression metrics on the held-out test set, and the train/test gap.

Computed here with numpy (not delegated to scikit-learn) so the tests can compare every
number with scikit-learn's independent implementation. Every result is a JSON-safe dict;
a metric that is undefined on the data (e.g. ROC AUC with one class) is None and its
reason is under ``undefined``.

Classification (binary; positive label ``pos``; TP, FP, FN, TN from the confusion matrix):

* accuracy = (TP + TN) / n
* precision = TP / (TP + FP); recall = TP / (TP + FN); F1 = 2·P·R / (P + R)
  (multiclass: the unweighted mean over classes, "macro"). Where a denominator is zero
  scikit-learn returns 0 with a warning; here the metric is None with the reason.
* ROC AUC = P(score of a random positive > score of a random negative), ties counting 1/2:
  the Mann–Whitney U statistic (Σ ranks of positives − n₊(n₊+1)/2) / (n₊·n₋), mid-ranks
  for ties (Hanley & McNeil 1982). Binary only. ``roc_curve``: the curve's points (false
  and true positive rates at each distinct score, highest first, from (0, 0) to (1, 1)),
  thinned to at most ``MAX_ROC_POINTS`` for the validation report's chart.
* Brier score = mean((p − y)²), y ∈ {0, 1}, p the predicted probability of the positive class
  (Brier 1950). Lower is better; 0.25 is the score of a constant 0.5.
* calibration: the reliability table on ``n_bins`` equal-width bins of p (edges 0, 1/b, ...,
  1; a value on an interior edge falls in the lower bin, as scikit-learn's
  ``calibration_curve``): per non-empty bin, the mean p, the observed frequency of
  positives and the count.

Regression (y true, ŷ predicted):

* RMSE = √(mean((y − ŷ)²)); MAE = mean(|y − ŷ|)
* R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (None when y is constant)
* directional accuracy = share of rows with y ≠ 0 where sign(ŷ) = sign(y) (rows with y = 0
  have no direction and are left out; ŷ = 0 counts as wrong).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from models_registry.checks._json import safe_float, with_reasons
from models_registry.checks.errors import InvalidParameter, InvalidValues
from models_registry.checks.inputs import (
    check_min_rows,
    check_nan_fraction,
    expected_features,
    select_features,
)

DEFAULT_MIN_TEST_ROWS = 30
LOWER_IS_BETTER = frozenset({"rmse", "mae", "brier_score", "log_loss"})


def _array(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidValues(f"{name} must be one-dimensional, not of shape {arr.shape}")
    return arr


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels (sorted union) and the confusion matrix C[i, j] = #(true = label i, predicted = label j)."""
    labels, inverse = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k = len(labels)
    true_idx, pred_idx = inverse[: len(y_true)], inverse[len(y_true) :]
    matrix = np.bincount(true_idx * k + pred_idx, minlength=k * k).reshape(k, k)
    return labels, matrix


def roc_auc(y_positive: np.ndarray, score: np.ndarray) -> float | None:
    """Binary ROC AUC by the Mann–Whitney rank formula; None with one class only."""
    n_pos = int(y_positive.sum())
    n_neg = len(y_positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)  # mid-ranks for ties
    return float((ranks[y_positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


MAX_ROC_POINTS = 201


def roc_curve(y_positive: np.ndarray, score: np.ndarray, max_points: int = MAX_ROC_POINTS) -> dict[str, Any] | None:
    """ROC points (FPR, TPR) at every distinct score threshold, thinned (ends kept); None with one class."""
    n_pos = int(y_positive.sum())
    n_neg = len(y_positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(-score, kind="mergesort")
    ranked, positive = score[order], y_positive[order]
    # The last row of each run of equal scores: a threshold admits ties together.
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tps = np.cumsum(positive)[ends]
    fps = ends + 1 - tps
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    n = len(fpr)
    if n > max_points:
        keep = np.unique(np.r_[np.linspace(0, n - 1, max_points).round().astype(int), n - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "points": n}


def calibration_table(y_positive: np.ndarray, probability: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Reliability table on equal-width bins: mean predicted probability, observed frequency, count."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], probability, side="left")
    counts = np.bincount(bins, minlength=n_bins)
    sum_p = np.bincount(bins, weights=probability, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y_positive.astype(float), minlength=n_bins)
    return [
        {
            "bin_low": float(edges[b]),
            "bin_high": float(edges[b + 1]),
            "mean_predicted": float(sum_p[b] / counts[b]),
            "observed_frequency": float(sum_y[b] / counts[b]),
            "count": int(counts[b]),
        }
        for b in range(n_bins)
        if counts[b]
    ]


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    y_score: Any | None = None,
    *,
    positive_label: Any = None,
    n_calibration_bins: int = 10,
) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC, confusion matrix and calibration (Brier) of predictions.

    ``y_score`` is the predicted probability of ``positive_label`` (default: the larger of two
    labels). With more than two labels, precision/recall/F1 are macro averages and ROC AUC,
    Brier and calibration are None.
    """
    true = _array(y_true, "y_true")
    pred = _array(y_pred, "y_pred")
    if len(true) != len(pred):
        raise InvalidValues(f"y_true has {len(true)} rows and y_pred {len(pred)}")
    check_min_rows(len(true), 1)
    if pd.isna(true).any() or pd.isna(pred).any():
        raise InvalidValues("y_true and y_pred must not contain missing values")
    labels, matrix = confusion(true, pred)
    reasons: dict[str, str] = {}
    n = len(true)
    values: dict[str, Any] = {"n": n, "accuracy": float(np.trace(matrix) / n)}
    binary = len(labels) <= 2 or positive_label is not None
    if positive_label is None:
        positive_label = labels[-1]
    if binary:
        is_pos_true, is_pos_pred = true == positive_label, pred == positive_label
        tp = int(np.sum(is_pos_true & is_pos_pred))
        fp = int(np.sum(~is_pos_true & is_pos_pred))
        fn = int(np.sum(is_pos_true & ~is_pos_pred))
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        if precision is None:
            reasons["precision"] = "no positive predictions (TP + FP = 0)"
        if recall is None:
            reasons["recall"] = "no positive labels in the test set (TP + FN = 0)"
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        if f1 is None:
            reasons["f1"] = "no positive labels nor predictions"
        values.update(average="binary", positive_label=positive_label, precision=precision, recall=recall, f1=f1)
    else:
        tp_k = np.diag(matrix).astype(float)
        predicted_k = matrix.sum(axis=0)
        actual_k = matrix.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec_k = np.where(predicted_k > 0, tp_k / predicted_k, np.nan)
            rec_k = np.where(actual_k > 0, tp_k / actual_k, np.nan)
            f1_k = np.where(predicted_k + actual_k > 0, 2 * tp_k / (predicted_k + actual_k), np.nan)
        values.update(average="macro", positive_label=None)
        for name, per_class in (("precision", prec_k), ("recall", rec_k), ("f1", f1_k)):
            if np.isnan(per_class).any():
                values[name] = None
                reasons[name] = f"undefined for some classes ({name} has a zero denominator)"
            else:
                values[name] = float(per_class.mean())
    values["confusion_matrix"] = {"labels": labels.tolist(), "matrix": matrix.tolist()}
    score = None if y_score is None else _array(y_score, "y_score").astype(float)
    if score is not None and len(score) != n:
        raise InvalidValues(f"y_score has {len(score)} rows and y_true {n}")
    if score is not None and not np.isfinite(score).all():
        raise InvalidValues("y_score must be finite")
    if score is None or not binary:
        why = "no predicted probabilities" if score is None else "defined here for binary classification only"
        values.update(roc_auc=None, roc_curve=None, brier_score=None, calibration=None)
        reasons.update(roc_auc=why, roc_curve=why, brier_score=why, calibration=why)
    else:
        positive = true == positive_label
        values["roc_auc"] = roc_auc(positive, score)
        values["roc_curve"] = roc_curve(positive, score)
        if values["roc_auc"] is None:
            reasons["roc_auc"] = reasons["roc_curve"] = "the test set has only one class"
        if score.min() < 0 or score.max() > 1:
            values.update(brier_score=None, calibration=None)
            reasons.update(brier_score="scores are not probabilities", calibration="scores are not probabilities")
        else:
            values["brier_score"] = float(np.mean((score - positive) ** 2))
            values["calibration"] = calibration_table(positive, score, n_calibration_bins)
    return with_reasons(values, reasons)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """RMSE, MAE, R² and directional accuracy of predictions (formulas in the module docstring)."""
    true = _array(y_true, "y_true").astype(float)
    pred = _array(y_pred, "y_pred").astype(float)
    if len(true) != len(pred):
        raise InvalidValues(f"y_true has {len(true)} rows and y_pred {len(pred)}")
    check_min_rows(len(true), 1)
    if not (np.isfinite(true).all() and np.isfinite(pred).all()):
        raise InvalidValues("y_true and y_pred must be finite")
    residual = true - pred
    reasons: dict[str, str] = {}
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    r2 = None if ss_tot == 0 else 1.0 - float(np.sum(residual**2)) / ss_tot
    if r2 is None:
        reasons["r2"] = "the true values are constant"
    moving = true != 0
    directional = float(np.mean(np.sign(pred[moving]) == np.sign(true[moving]))) if moving.any() else None
    if directional is None:
        reasons["directional_accuracy"] = "every true value is zero"
    values = {
        "n": len(true),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "r2": r2,
        "directional_accuracy": directional,
    }
    return with_reasons(values, reasons)


def _prepare(
    model: Any, X: pd.DataFrame, y: Any, *, min_rows: int, nan_tolerance: float, what: str
) -> tuple[Any, np.ndarray, int]:
    X = select_features(X, expected_features(model))
    target = pd.Series(np.asarray(y), index=X.index if isinstance(X, pd.DataFrame) else None, name="target")
    if len(target) != len(X):
        raise InvalidValues(f"{what} has {len(X)} feature rows and {len(target)} targets")
    check_min_rows(len(target), min_rows, what)
    if isinstance(X, pd.DataFrame):
        check_nan_fraction(pd.concat([X, target], axis=1), nan_tolerance, what)
        keep = X.notna().all(axis=1).to_numpy() & target.notna().to_numpy()
        dropped = int((~keep).sum())
        if dropped:
            X, target = X.loc[keep], target.loc[keep]
            check_min_rows(len(target), min_rows, f"{what} without its rows with missing values")
    else:
        dropped = 0
    return X, target.to_numpy(), dropped


def evaluate_classifier(
    model: Any,
    X_test: pd.DataFrame,
    y_test: Any,
    *,
    min_rows: int = DEFAULT_MIN_TEST_ROWS,
    nan_tolerance: float = 0.0,
    positive_label: Any = None,
) -> dict[str, Any]:
    """``classification_metrics`` of a fitted classifier on the held-out test set.

    Guards first (no partial result): the model's ``feature_names_in_`` must be exactly the
    test set's columns (``FeatureMismatch``), at least ``min_rows`` rows (``TestSetTooSmall``),
    no column with a missing-value fraction above ``nan_tolerance`` (``NaNAboveTolerance``);
    rows with missing values within the tolerance are left out and counted. The score for
    ROC AUC and the Brier score is ``predict_proba`` of the positive class, when the model has it.
    """
    X, y, dropped = _prepare(model, X_test, y_test, min_rows=min_rows, nan_tolerance=nan_tolerance, what="the test set")
    pred = np.asarray(model.predict(X))
    score = None
    classes = getattr(model, "classes_", None)
    if hasattr(model, "predict_proba") and classes is not None and len(classes) == 2:
        label = classes[-1] if positive_label is None else positive_label
        column = int(np.flatnonzero(np.asarray(classes) == label)[0])
        score = np.asarray(model.predict_proba(X))[:, column]
        positive_label = label
    result = classification_metrics(y, pred, score, positive_label=positive_label)
    result["rows_dropped_missing"] = dropped
    return result


def evaluate_regressor(
    model: Any,
    X_test: pd.DataFrame,
    y_test: Any,
    *,
    min_rows: int = DEFAULT_MIN_TEST_ROWS,
    nan_tolerance: float = 0.0,
) -> dict[str, Any]:
    """``regression_metrics`` of a fitted regressor on the test set (the guards of ``evaluate_classifier``)."""
    X, y, dropped = _prepare(model, X_test, y_test, min_rows=min_rows, nan_tolerance=nan_tolerance, what="the test set")
    result = regression_metrics(y, np.asarray(model.predict(X)))
    result["rows_dropped_missing"] = dropped
    return result


def train_test_gap(
    train_metrics: Mapping[str, Any],
    test_metrics: Mapping[str, Any],
    *,
    threshold: float,
    metric: str = "accuracy",
    higher_is_better: bool | None = None,
) -> dict[str, Any]:
    """How much better ``metric`` is on the training data than on the test set, and whether that exceeds ``threshold``.

    gap = train − test when higher is better (accuracy, F1, AUC, R²...), test − train when lower
    is better (RMSE, MAE, Brier; inferred from the name unless given). A gap above
    ``threshold`` (same units as the metric) is an overfitting finding. The test value is what
    the model is judged on; the training value only serves this comparison.
    """
    if threshold < 0:
        raise InvalidParameter(f"the gap threshold must be non-negative, not {threshold}")
    for name, source in (("training", train_metrics), ("test", test_metrics)):
        if metric not in source:
            raise InvalidParameter(f"metric {metric!r} is not in the {name} metrics ({', '.join(sorted(source))})")
    lower = metric in LOWER_IS_BETTER if higher_is_better is None else not higher_is_better
    train, test = safe_float(train_metrics[metric]), safe_float(test_metrics[metric])
    result: dict[str, Any] = {
        "metric": metric,
        "train": train,
        "test": test,
        "higher_is_better": not lower,
        "threshold": float(threshold),
    }
    if train is None or test is None:
        return {**result, "gap": None, "exceeds": None, "undefined": {"gap": f"{metric} is undefined on one side"}}
    gap = (test - train) if lower else (train - test)
    return {**result, "gap": gap, "exceeds": gap > threshold, "finding": "overfitting" if gap > threshold else None}
