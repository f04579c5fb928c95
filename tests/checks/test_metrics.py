"""Metrics against scikit-learn's independent implementations, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LinearRegression, LogisticRegression

from models_registry.checks.errors import FeatureMismatch, InvalidParameter, NaNAboveTolerance, TestSetTooSmall
from models_registry.checks.metrics import (
    classification_metrics,
    evaluate_classifier,
    evaluate_regressor,
    regression_metrics,
    train_test_gap,
)
from tests.checks.conftest import assert_json_safe


@pytest.fixture
def binary():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    # Scores rounded to one decimal so ROC AUC has to handle ties.
    score = np.round(np.clip(0.5 * y + rng.normal(0.25, 0.25, 400), 0, 1), 1)
    pred = (score >= 0.5).astype(int)
    return y, pred, score


def test_binary_metrics_match_sklearn(binary):
    y, pred, score = binary
    result = classification_metrics(y, pred, score)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert result["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert result["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert result["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert result["brier_score"] == pytest.approx(skm.brier_score_loss(y, score), abs=1e-12)
    assert result["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert result["confusion_matrix"]["labels"] == [0, 1]
    observed, predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
    assert [b["observed_frequency"] for b in result["calibration"]] == pytest.approx(observed.tolist())
    assert [b["mean_predicted"] for b in result["calibration"]] == pytest.approx(predicted.tolist())
    assert sum(b["count"] for b in result["calibration"]) == len(y)
    assert result["undefined"] == {}
    assert_json_safe(result)


def test_string_labels_and_explicit_positive_label():
    y = np.array(["up", "down", "up", "up", "down", "down"])
    pred = np.array(["up", "up", "up", "down", "down", "down"])
    result = classification_metrics(y, pred, positive_label="down")
    assert result["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="down"))
    assert result["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="down"))
    assert result["roc_auc"] is None and result["undefined"]["roc_auc"] == "no predicted probabilities"
    assert_json_safe(result)


def test_multiclass_macro_matches_sklearn():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 3, 300))
    result = classification_metrics(y, pred)
    assert result["average"] == "macro"
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert result[name] == pytest.approx(fn(y, pred, average="macro"), abs=1e-12)
    assert result["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()


def test_undefined_metrics_are_none_with_a_reason():
    result = classification_metrics([1, 1, 1], [0, 0, 0], [0.2, 0.3, 0.1])
    assert result["precision"] is None
    assert "no positive predictions" in result["undefined"]["precision"]
    assert result["roc_auc"] is None
    assert result["undefined"]["roc_auc"] == "the test set has only one class"
    assert all(key in result["undefined"] for key, value in result.items() if value is None)
    assert_json_safe(result)


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(11)
    y = rng.normal(0, 0.02, 250)
    pred = 0.3 * y + rng.normal(0, 0.01, 250)
    y[:5] = 0.0  # no direction: left out of the directional accuracy
    result = regression_metrics(y, pred)
    assert result["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), abs=1e-15)
    assert result["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-15)
    assert result["r2"] == pytest.approx(skm.r2_score(y, pred), abs=1e-12)
    hits = sum(1 for t, p in zip(y[5:], pred[5:], strict=True) if (t > 0) == (p > 0) and p != 0)
    assert result["directional_accuracy"] == pytest.approx(hits / 245)
    assert_json_safe(result)


def test_r2_undefined_for_constant_truth():
    result = regression_metrics([1.0, 1.0, 1.0], [1.0, 2.0, 0.5])
    assert result["r2"] is None and result["undefined"]["r2"] == "the true values are constant"


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = (X["a"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    model = LogisticRegression().fit(X.iloc[:200], y.iloc[:200])
    return model, X.iloc[200:].reset_index(drop=True), y.iloc[200:].reset_index(drop=True)


def test_evaluate_classifier_uses_predict_proba_on_the_test_set(fitted):
    model, X, y = fitted
    result = evaluate_classifier(model, X[["c", "a", "b"]], y)  # column order does not matter
    proba = model.predict_proba(X)[:, 1]
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, model.predict(X)))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
    assert result["brier_score"] == pytest.approx(skm.brier_score_loss(y, proba))
    assert result["rows_dropped_missing"] == 0
    assert_json_safe(result)


def test_feature_mismatch_names_missing_and_extra_columns(fitted):
    model, X, y = fitted
    with pytest.raises(FeatureMismatch) as exc:
        evaluate_classifier(model, X.drop(columns=["b"]).assign(z=1.0), y)
    assert exc.value.detail == {"missing": ["b"], "extra": ["z"]}
    assert "missing from the dataset: b" in str(exc.value) and "not expected by the model: z" in str(exc.value)


def test_test_set_too_small_and_empty(fitted):
    model, X, y = fitted
    with pytest.raises(TestSetTooSmall, match="the test set has 10 rows; at least 30 are needed"):
        evaluate_classifier(model, X.iloc[:10], y.iloc[:10])
    with pytest.raises(TestSetTooSmall) as exc:
        evaluate_classifier(model, X.iloc[:0], y.iloc[:0])
    assert exc.value.detail["rows"] == 0 and exc.value.detail["minimum"] == 30


def test_nans_beyond_tolerance_name_the_columns_and_within_are_dropped(fitted):
    model, X, y = fitted
    X = X.copy()
    X.loc[:9, "b"] = np.nan  # 10 %
    with pytest.raises(NaNAboveTolerance) as exc:
        evaluate_classifier(model, X, y, nan_tolerance=0.05)
    assert exc.value.detail["columns"] == {"b": 0.1}
    assert "b (10.00%)" in str(exc.value)
    result = evaluate_classifier(model, X, y, nan_tolerance=0.1)
    assert result["rows_dropped_missing"] == 10 and result["n"] == 90


def test_evaluate_regressor():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(100, 2)), columns=["x1", "x2"])
    y = 2 * X["x1"] + rng.normal(size=100)
    model = LinearRegression().fit(X, y)
    result = evaluate_regressor(model, X, y)
    assert result["r2"] == pytest.approx(skm.r2_score(y, model.predict(X)))


def test_train_test_gap():
    gap = train_test_gap({"accuracy": 0.92}, {"accuracy": 0.71}, threshold=0.1)
    assert gap["gap"] == pytest.approx(0.21) and gap["exceeds"] is True and gap["finding"] == "overfitting"
    ok = train_test_gap({"accuracy": 0.75}, {"accuracy": 0.71}, threshold=0.1)
    assert ok["exceeds"] is False and ok["finding"] is None
    rmse = train_test_gap({"rmse": 0.010}, {"rmse": 0.018}, threshold=0.005, metric="rmse")
    assert rmse["higher_is_better"] is False and rmse["gap"] == pytest.approx(0.008) and rmse["exceeds"] is True
    undefined = train_test_gap({"precision": 0.8}, {"precision": None}, threshold=0.1, metric="precision")
    assert undefined["gap"] is None and undefined["exceeds"] is None
    with pytest.raises(InvalidParameter, match="'f1' is not in the training metrics"):
        train_test_gap({"accuracy": 0.9}, {"f1": 0.8}, threshold=0.1, metric="f1")


def test_roc_curve_points_match_sklearn_and_are_thinned_with_the_ends_kept(binary):
    y, pred, score = binary
    result = classification_metrics(y, pred, score)["roc_curve"]
    fpr, tpr, _ = skm.roc_curve(y, score, drop_intermediate=False)
    # sklearn starts at an infinite threshold (0, 0), as these points do.
    assert result["fpr"] == pytest.approx(fpr.tolist()) and result["tpr"] == pytest.approx(tpr.tolist())
    rng = np.random.default_rng(5)
    many = rng.random(2_000)
    labels = (many + rng.normal(0, 0.3, 2_000) > 0.5).astype(int)
    thinned = classification_metrics(labels, (many > 0.5).astype(int), many)["roc_curve"]
    assert thinned["points"] == 2_001 and len(thinned["fpr"]) <= 201
    assert (thinned["fpr"][0], thinned["tpr"][0], thinned["fpr"][-1], thinned["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(thinned["fpr"]) >= 0) and np.all(np.diff(thinned["tpr"]) >= 0)
