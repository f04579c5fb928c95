"""Permutation importance: reproducible, JSON-safe, equal to scikit-learn's own call."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance

from models_registry.checks.errors import FeatureMismatch, NaNAboveTolerance
from models_registry.checks.explainability import explainability_required, permutation_importance_summary
from tests.checks.conftest import assert_json_safe


@pytest.fixture
def model_and_data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=["signal", "noise_1", "noise_2", "weak"])
    y = ((X["signal"] + 0.2 * X["weak"] + 0.3 * rng.normal(size=400)) > 0).astype(int)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X.iloc[:300], y.iloc[:300])
    return model, X.iloc[300:], y.iloc[300:]


def test_importance_ranks_the_signal_first_and_is_reproducible(model_and_data):
    model, X, y = model_and_data
    summary = permutation_importance_summary(model, X, y, n_repeats=5, random_state=3)
    assert summary["features"][0]["feature"] == "signal"
    assert [f["rank"] for f in summary["features"]] == [1, 2, 3, 4]
    again = permutation_importance_summary(model, X, y, n_repeats=5, random_state=3)
    assert again == summary
    direct = permutation_importance(model, X, y, n_repeats=5, random_state=3)
    by_name = {f["feature"]: f for f in summary["features"]}
    for j, name in enumerate(X.columns):
        assert by_name[name]["importance_mean"] == pytest.approx(direct.importances_mean[j])
        assert by_name[name]["importance_std"] == pytest.approx(direct.importances_std[j])
    assert summary["baseline_score"] == pytest.approx(model.score(X, y))
    assert_json_safe(summary)


def test_row_cap_and_scoring(model_and_data):
    model, X, y = model_and_data
    summary = permutation_importance_summary(model, X, y, scoring="roc_auc", n_repeats=2, max_rows=50)
    assert summary["n_rows"] == 50 and summary["scoring"] == "roc_auc"


def test_bad_input(model_and_data):
    model, X, y = model_and_data
    with pytest.raises(FeatureMismatch, match="weak"):
        permutation_importance_summary(model, X.drop(columns=["weak"]), y)
    X = X.copy()
    X.iloc[0, 1] = np.nan
    with pytest.raises(NaNAboveTolerance, match="noise_1"):
        permutation_importance_summary(model, X, y)


def test_explainability_required_for_high_complexity():
    assert explainability_required("high") and explainability_required("very_high")
    assert not explainability_required("low") and not explainability_required("medium")
