"""The pipeline end to end on real NVDA prices: numbers, reproducibility, findings, events."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

from audit.models import Event
from governance.models import Finding
from models_registry import artifacts, features
from models_registry import assessment as pipeline
from models_registry.assessment_services import load_inputs
from tests.assessments.conftest import FAST, slice_prices

pytestmark = pytest.mark.django_db


def test_a_full_assessment_succeeds_with_every_check(assessable, owner, run_now):
    version = assessable()
    assessment, created = run_now(actor=owner, version=version)
    assert created
    assert assessment.status == "succeeded", assessment.error
    assert assessment.progress_percent == 100 and assessment.current_step == "done"
    assert assessment.attempts == 1 and assessment.started_at and assessment.finished_at
    for name in (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "brier",
        "total_return",
        "sharpe_ratio",
        "max_drawdown",
        "pbo",
        "train_test_gap",
        "hit_rate",
    ):
        assert name in assessment.metrics, name
    assert set(assessment.results) >= {
        "performance",
        "backtest",
        "robustness",
        "overfitting",
        "data_quality",
        "drift",
        "explainability",
    }
    assert assessment.overfitting["method"] and isinstance(assessment.overfitting["passed"], bool)
    assert assessment.explainability["method"] == "permutation_importance"
    assert set(assessment.environment) == {"python", "numpy", "pandas", "scipy", "scikit-learn", "skops"}
    assert assessment.inputs["artifact_sha256"] == version.artifact_sha256
    assert assessment.inputs["datasets"]["test"]["sha256"] == version.test_dataset.content_sha256
    assert assessment.metrics["max_drawdown"] >= 0
    actions = list(
        Event.objects.filter(object_type="models_registry.riskassessment", object_id=str(assessment.pk)).values_list(
            "action", flat=True
        )
    )
    assert actions[0] == "risk_assessment.requested" and actions[1] == "risk_assessment.started"
    assert actions[-1] == "risk_assessment.succeeded"
    assert "risk_assessment.progressed" in actions


def test_metrics_equal_scikit_learn_on_the_same_test_data(assessable, owner, run_now):
    version = assessable()
    assessment, _ = run_now(actor=owner, version=version, kind="performance")
    model = artifacts.load_artifact(version.artifact.open("rb").read())
    built = features.build_features(slice_prices("test"))
    X, y = built[features.FEATURES], built["next_up"]
    predicted = model.predict(X)
    proba = model.predict_proba(X)[:, 1]
    m = assessment.metrics
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert m["precision"] == pytest.approx(skm.precision_score(y, predicted))
    assert m["recall"] == pytest.approx(skm.recall_score(y, predicted))
    assert m["f1"] == pytest.approx(skm.f1_score(y, predicted))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, proba))
    assert assessment.results["performance"]["n"] == len(y)


def test_two_runs_give_identical_numbers(assessable, owner, run_now):
    version = assessable(
        estimator=RandomForestClassifier(n_estimators=15, max_depth=3, random_state=None),
        model={"model_type": "random_forest"},
    )
    first, _ = run_now(actor=owner, version=version, parameters={**FAST, "random_seed": 11})
    # The same inputs are the same assessment; another seed is another assessment, run again.
    again, created = run_now(actor=owner, version=version, parameters={**FAST, "random_seed": 11})
    assert not created and again.pk == first.pk

    one = pipeline.run(load_inputs(first), lambda *_: None)
    two = pipeline.run(load_inputs(first), lambda *_: None)
    assert one.metrics == two.metrics == first.metrics
    assert one.results == two.results


def test_a_regressor_is_backtested_on_the_sign_of_its_forecast(assessable, owner, run_now):
    version = assessable(estimator=LinearRegression(), target="next_return", model={"model_type": "linear_regression"})
    assessment, _ = run_now(actor=owner, version=version)
    assert assessment.status == "succeeded", assessment.error
    assert {"rmse", "mae", "r2", "directional_accuracy", "sharpe_ratio"} <= set(assessment.metrics)
    assert assessment.results["backtest"]["signal"].startswith("sign of the predicted return")
    assert assessment.results["overfitting"]["pbo"]["grid"].startswith("feature subsets")
    assert np.isfinite(assessment.metrics["rmse"])


def test_findings_are_raised_with_the_results(assessable, owner, run_now):
    version = assessable(
        estimator=RandomForestClassifier(n_estimators=20, max_depth=None, random_state=1),
        model={"model_type": "random_forest"},
    )
    assessment, _ = run_now(actor=owner, version=version, parameters={**FAST, "gap_threshold": 0.05})
    assert assessment.status == "succeeded", assessment.error
    found = Finding.objects.filter(assessment=assessment)
    gap = found.get(title__startswith="Overfitting")
    assert (
        gap.severity == "high" and gap.raised_by is None and gap.raised_by_label == f"risk assessment {assessment.pk}"
    )
    assert gap.remediation_owner == owner and gap.version == version
    assert assessment.overfitting["passed"] is False
    assert Event.objects.filter(action="finding.raised", object_id=str(gap.pk)).exists()
