"""Rating a finished risk assessment by the policies at the ``assessment`` trigger."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.models import Event
from governance import services
from governance.models import PolicyDecision
from governance.policy import rating

pytestmark = pytest.mark.django_db

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


def _assessment(**metrics):
    return {
        "id": 41,
        "completed_at": timezone.now(),
        "metrics": {**SOUND, **metrics},
        "overfitting": {"passed": True, "method": "cscv_pbo", "details": {}},
        "explainability": None,
    }


def test_a_sound_assessment_is_green(active_set, validated_version, risk_manager):
    rated = services.risk_assessment_rating(
        actor=risk_manager, version=validated_version, risk_assessment=_assessment()
    )
    assert rated["rating"] == "green" and rated["rules"] == []
    decision = PolicyDecision.objects.get(pk=rated["decision"])
    assert decision.trigger == "assessment" and decision.input_document["risk_assessment"]["id"] == 41
    assert Event.objects.filter(action="policy.decided", object_id=str(decision.pk)).exists()


def test_a_denying_rule_makes_it_red_and_names_the_rule_first(active_set, validated_version, risk_manager):
    rated = services.risk_assessment_rating(
        actor=risk_manager, version=validated_version, risk_assessment=_assessment(pbo=0.8, deflated_sharpe_ratio=0.3)
    )
    assert rated["rating"] == "red"
    assert [rule["id"] for rule in rated["rules"]] == ["ASSESS-PBO-01", "ASSESS-DSR-01"]
    assert "0.8" in rated["rules"][0]["message"] and rated["rules"][0]["references"]


def test_a_warning_makes_it_amber(active_set, validated_version, risk_manager):
    rated = services.risk_assessment_rating(
        actor=risk_manager, version=validated_version, risk_assessment=_assessment(drifted_features=2)
    )
    assert rated["rating"] == "amber" and [rule["id"] for rule in rated["rules"]] == ["ASSESS-DRIFT-01"]


def test_without_a_policy_set_in_force_there_is_no_rating(validated_version, risk_manager):
    assert (
        services.risk_assessment_rating(actor=risk_manager, version=validated_version, risk_assessment=_assessment())
        is None
    )


def test_rate_orders_denials_first():
    results = [
        {"id": "A", "outcome": "warn", "message": "a", "references": []},
        {"id": "B", "outcome": "pass", "message": "", "references": []},
        {"id": "C", "outcome": "deny", "message": "c", "references": []},
    ]
    assert rating.rate(results) == (
        "red",
        [
            {"id": "C", "outcome": "deny", "message": "c", "references": []},
            {"id": "A", "outcome": "warn", "message": "a", "references": []},
        ],
    )
    assert rating.rate([]) == ("green", [])
