"""The rating decided by the policies when an assessment succeeds, in the results' transaction."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import Event
from governance.models import PolicyDecision
from governance.policy import rating
from models_registry import assessment_services, services
from models_registry.assessment import FindingSpec, Outcome
from models_registry.models import RiskAssessment
from tests.assessments.conftest import FAST

pytestmark = pytest.mark.django_db

# Within every default threshold of an alpha model, whatever its tier.
SOUND = {
    "accuracy": 0.56,
    "precision": 0.55,
    "recall": 0.5,
    "total_return": 0.12,
    "sharpe_ratio": 1.2,
    "max_drawdown": 0.1,
    "pbo": 0.2,
    "deflated_sharpe_ratio": 0.97,
    "data_quality_failures": 0,
    "drifted_features": 0,
}


def outcome(**metrics: Any) -> Outcome:
    return Outcome(
        metrics={**SOUND, **metrics},
        results={
            "backtest": {
                "equity_curve": {
                    "dates": ["2011-01-03", "2011-01-04"],
                    "strategy": [1.0, 1.1],
                    "benchmark": [1.0, 1.05],
                    "downsampled_from": None,
                }
            }
        },
        overfitting={"passed": True, "method": "train/test gap, PBO", "details": {}},
        explainability={"method": "permutation_importance", "summary": "x", "details": {}},
        findings=[FindingSpec(check="drift", severity="medium", title="Drift", description="PSI")]
        if metrics.get("drifted_features")
        else [],
    )


@pytest.fixture
def finished(assessable, owner, monkeypatch):
    """Run a full assessment whose pipeline returns ``outcome(**metrics)``; returns it refreshed."""

    def run(kind: str = "full", **metrics: Any) -> RiskAssessment:
        monkeypatch.setattr(assessment_services.pipeline, "run", lambda inputs, progress: outcome(**metrics))
        assessment, _ = services.assessment_request(actor=owner, version=assessable(), kind=kind, parameters=FAST)
        return assessment_services.assessment_execute(assessment_id=assessment.pk)

    return run


def test_a_sound_assessment_is_green_with_its_decision_recorded(active_set, finished):
    assessment = finished()
    assert assessment.status == "succeeded" and assessment.rating == "green" and assessment.rating_rules == []
    decision = PolicyDecision.objects.get(pk=assessment.rating_decision_id)
    assert decision.trigger == "assessment" and decision.version_id == assessment.version_id
    assert decision.input_document["risk_assessment"]["id"] == assessment.pk
    assert decision.input_document["risk_assessment"]["metrics"]["pbo"] == 0.2
    assert decision.policy_set_id == active_set.pk
    assert Event.objects.filter(action="policy.decided", object_id=str(decision.pk)).exists()
    succeeded = Event.objects.get(action="risk_assessment.succeeded", object_id=str(assessment.pk))
    assert succeeded.after["rating"] == "green" and succeeded.after["rating_decision"] == decision.pk
    assert succeeded.after["policy_set_hash"] == active_set.content_hash


def test_a_warning_makes_it_amber_and_names_the_rule(active_set, finished):
    assessment = finished(drifted_features=2)
    assert assessment.rating == "amber"
    assert [rule["id"] for rule in assessment.rating_rules] == ["ASSESS-DRIFT-01"]
    rule = assessment.rating_rules[0]
    assert rule["outcome"] == "warn" and "2" in rule["message"] and rule["references"]
    assert assessment.findings.count() == 1  # raised in the same transaction


@pytest.mark.parametrize(
    ("metrics", "deciding"),
    [
        ({"pbo": 0.8}, "ASSESS-PBO-01"),
        ({"data_quality_failures": 1}, "ASSESS-DATA-01"),
        ({"sharpe_ratio": 0.1}, "PERF-BACKTEST-01"),
    ],
)
def test_a_denying_rule_makes_it_red(active_set, finished, metrics, deciding):
    assessment = finished(**metrics, deflated_sharpe_ratio=0.5)
    assert assessment.rating == "red"
    ids = [rule["id"] for rule in assessment.rating_rules]
    assert ids[0] == deciding and "ASSESS-DSR-01" in ids  # denials first, then warnings
    assert [rule["outcome"] for rule in assessment.rating_rules][-1] == "warn"


def test_a_metric_that_could_not_be_computed_is_left_out_of_the_policy_input(active_set, finished):
    assessment = finished(deflated_sharpe_ratio=None)
    assert assessment.status == "succeeded" and assessment.rating == "green"
    metrics = PolicyDecision.objects.get(pk=assessment.rating_decision_id).input_document["risk_assessment"]["metrics"]
    assert "deflated_sharpe_ratio" not in metrics and metrics["pbo"] == 0.2


def test_without_a_policy_set_the_rating_is_null_and_says_why(finished):
    assessment = finished()
    assert assessment.status == "succeeded" and assessment.rating is None and assessment.rating_decision is None
    assert assessment.rating_rules[0]["outcome"] == "not_rated"
    assert "no policy set" in assessment.rating_rules[0]["message"]
    assert not PolicyDecision.objects.exists()


def test_a_partial_kind_is_not_rated(active_set, finished):
    assessment = finished(kind="performance")
    assert assessment.rating is None and "only full assessments" in assessment.rating_rules[0]["message"]
    assert not PolicyDecision.objects.filter(trigger="assessment").exists()


def test_a_failing_rating_leaves_nothing_stored(active_set, finished, monkeypatch):
    import governance.services as governance_services

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("policy engine down")

    monkeypatch.setattr(governance_services, "risk_assessment_rating", broken)
    assessment = finished(drifted_features=1)
    assert assessment.status == "failed" and assessment.metrics is None and assessment.rating is None
    assert not assessment.findings.exists()


def test_a_real_full_run_reports_the_metrics_the_rules_read(active_set, assessable, owner, run_now):
    assessment, _ = run_now(actor=owner, version=assessable())
    assert assessment.status == "succeeded", assessment.error
    for name in ("pbo", "data_quality_failures", "drifted_features"):
        assert isinstance(assessment.metrics[name], int | float), name
    assert assessment.rating in ("green", "amber", "red")
    decision = PolicyDecision.objects.get(pk=assessment.rating_decision_id)
    evaluated = {result["id"] for result in decision.results if result["outcome"] != "not_applicable"}
    assert {"ASSESS-PBO-01", "ASSESS-DATA-01", "ASSESS-DRIFT-01"} <= evaluated
    assert (assessment.rating, assessment.rating_rules) == rating.rate(decision.results)
