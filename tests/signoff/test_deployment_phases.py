"""The deployment plan's phase rules (governance/policies/deployment.yaml, "Phase rules";
docs/deployments.md): each phase's capital share, maximum daily loss, instruments, minimum
duration and exit criteria, and the rollback settled before real capital trades. Each rule
refuses through the sign-off service with its id and message and allows the compliant case.

The approved version is a tier 3 model: its tier maximum is 50,000,000, so shadow and pilot
may have 10,000,000 (a fifth), with a maximum daily loss of 5% (shadow) or 2% (pilot) of it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import SystemActor
from governance import services
from governance.errors import PolicyDenied
from governance.models import Deployment, SignOffRequest
from governance.monitoring_services import monitoring_ingest
from governance.policy import document, loader
from tests.factories import force_fields
from tests.fixtures_deployment import deployment_request as _submit

pytestmark = pytest.mark.django_db

LIVE_PLAN = "Pull the kill switch; the desk unwinds open positions within the day."


def _denied(owner, version, rule: str, **proposal: Any) -> str:
    """Submit and expect the policies to refuse with ``rule``; the refusal's message. Nothing
    is requested."""
    before = SignOffRequest.objects.count()
    with pytest.raises(PolicyDenied) as caught:
        _submit(owner, version, **proposal)
    assert SignOffRequest.objects.count() == before
    reasons = {item["id"]: item["message"] for item in caught.value.detail["reasons"]}
    assert rule in reasons, reasons
    assert f"{rule}: " in str(caught.value)
    return reasons[rule]


def _outcomes(request: SignOffRequest) -> dict[str, str]:
    return {result["id"]: result["outcome"] for result in request.latest_decision.results}


def _approve(request: SignOffRequest, approver) -> SignOffRequest:
    return services.signoff_respond(actor=approver, request=request, verdict="approve", comment="Limits agreed.")


def _age_phase(days: float) -> Deployment:
    """The live deployment's phase began ``days`` ago (test set-up, audited)."""
    live = Deployment.objects.get(status="active")
    return force_fields(live, phase_started_at=timezone.now() - timedelta(days=days))


PILOT = {"phase": "pilot", "capital_limit": "8000000.00", "max_daily_loss": "160000.00", "rollback_plan": LIVE_PLAN}


# Entering a phase: its limits. ---------------------------------------------------------


def test_a_phase_the_parameters_do_not_describe_is_refused(approved_version, owner, settings):
    settings.GOVERNANCE_DEPLOYMENT_PHASES = ["trial", "pilot"]
    message = _denied(owner, approved_version, "DEPLOY-PHASE-01", phase="trial")
    assert message.startswith("Phase trial has no limits in the policy parameters")


def test_the_capital_limit_is_within_the_phases_share_of_the_tier_maximum(approved_version, owner):
    message = _denied(owner, approved_version, "DEPLOY-PHASE-CAPITAL-01", capital_limit="10000000.01")
    assert "at most 0.2 of the tier's maximum 50000000, that is 10000000 USD; proposed: 10000000.01" in message
    request = _submit(owner, approved_version, capital_limit="10000000.00")
    assert request.status == "pending"
    assert _outcomes(request)["DEPLOY-PHASE-CAPITAL-01"] == "pass"


def test_a_paper_phase_needs_no_maximum_daily_loss_but_one_it_states_is_bounded(approved_version, owner):
    message = _denied(owner, approved_version, "DEPLOY-DAILYLOSS-01", max_daily_loss="250000.01")
    assert "at most 0.05 of its capital limit 5000000.00, that is 250000 USD; proposed: 250000.01" in message
    request = _submit(owner, approved_version)  # shadow, no maximum daily loss
    assert _outcomes(request)["DEPLOY-DAILYLOSS-01"] == "not_applicable"


def test_the_instruments_are_named_and_within_the_phases_allow_list(approved_version, owner, compliance, tmp_path):
    message = _denied(owner, approved_version, "DEPLOY-INSTRUMENTS-01", instruments=[])
    assert "must name the instruments it trades" in message and "proposed: none" in message
    # A firm that restricts shadow to an allow-list (its own copy of the shipped set).
    policies = tmp_path / "policies"
    shutil.copytree(loader.DEFAULT_DIRECTORY, policies, ignore=shutil.ignore_patterns("tests"))
    parameters = yaml.safe_load((policies / "parameters.yaml").read_text())
    parameters["parameters"]["deployment_phases"]["shadow"]["allowed_instruments"] = ["NVDA", "ORCL"]
    (policies / "parameters.yaml").write_text(yaml.safe_dump(parameters))
    services.policy_set_activate(actor=compliance, directories=[policies])
    message = _denied(owner, approved_version, "DEPLOY-INSTRUMENTS-01", instruments=["NVDA", "TSLA"])
    assert "which: NVDA, ORCL" in message and "proposed: NVDA, TSLA" in message
    assert _submit(owner, approved_version, instruments=["ORCL", "NVDA"]).status == "pending"


# Promotions: the live phase's exit criteria and the next phase's limits. ----------------


def test_a_tier_1_promotion_before_the_phases_minimum_duration_is_refused(deployed, owner):
    force_fields(deployed.model, risk_tier=1)
    message = _denied(owner, deployed, "DEPLOY-DURATION-01", **PILOT)
    assert message.startswith("Phase shadow of eq-policy (tier 1) runs at least 336h before a promotion; it began at")
    _age_phase(13.9)
    _denied(owner, deployed, "DEPLOY-DURATION-01", **PILOT)
    _age_phase(14)
    reasons = {}
    try:
        _submit(owner, deployed, **PILOT)
    except PolicyDenied as refused:  # other tier 1 limits may refuse; never the duration any more
        reasons = {item["id"] for item in refused.detail["reasons"]}
    assert "DEPLOY-DURATION-01" not in reasons


def test_an_early_promotion_of_a_tier_3_model_is_an_exception_for_risk_and_compliance(
    deployed, owner, risk_manager, compliance
):
    _age_phase(13.9)
    request = _submit(owner, deployed, **PILOT)
    assert request.status == "pending"
    assert _outcomes(request)["DEPLOY-DURATION-02"] == "require_approval"
    message = next(r["message"] for r in request.latest_decision.reasons() if r["id"] == "DEPLOY-DURATION-02")
    assert "runs at least 336h before a promotion" in message and "risk manager and a compliance officer" in message
    request = _approve(request, risk_manager)
    assert request.status == "pending"  # the risk manager alone does not make the exception
    request = _approve(request, compliance)
    assert request.status == "approved"
    assert _outcomes(request)["DEPLOY-DURATION-02"] == "pass"
    assert Deployment.objects.get(status="active").phase == "pilot"
    _age_phase(14)  # on time, the exception is not needed


def test_a_promotion_after_the_minimum_duration_needs_no_exception(deployed, owner):
    _age_phase(14)
    request = _submit(owner, deployed, **PILOT)
    assert _outcomes(request)["DEPLOY-DURATION-02"] == "pass"


def test_a_promotion_into_a_live_phase_needs_a_bounded_maximum_daily_loss(deployed, owner, risk_manager):
    _age_phase(15)
    message = _denied(owner, deployed, "DEPLOY-DAILYLOSS-01", **{**PILOT, "max_daily_loss": None})
    assert "Phase pilot of eq-policy needs a maximum daily loss" in message and "proposed: none" in message
    _denied(owner, deployed, "DEPLOY-DAILYLOSS-01", **{**PILOT, "max_daily_loss": "160000.01"})
    request = _approve(_submit(owner, deployed, **PILOT), risk_manager)
    assert request.status == "approved"
    live = Deployment.objects.get(status="active")
    assert (live.phase, str(live.capital_limit), str(live.max_daily_loss)) == ("pilot", "8000000.00", "160000.00")
    assert live.phase_started_at > timezone.now() - timedelta(minutes=5)  # the pilot's clock starts


def test_a_promotion_beyond_the_tiers_maximum_is_refused_with_the_rules(deployed, owner):
    _age_phase(15)
    with pytest.raises(PolicyDenied) as caught:
        _submit(owner, deployed, **{**PILOT, "capital_limit": "60000000.00"})
    denied = {item["id"] for item in caught.value.detail["reasons"]}
    assert {"DEPLOY-CAPITAL-01", "DEPLOY-PHASE-CAPITAL-01"} <= denied
    # Within the tier's maximum but beyond the pilot's fifth of it.
    message = _denied(owner, deployed, "DEPLOY-PHASE-CAPITAL-01", **{**PILOT, "capital_limit": "12000000.00"})
    assert "that is 10000000 USD; proposed: 12000000.00" in message


def test_a_promotion_without_a_rollback_plan_is_refused(deployed, owner):
    _age_phase(15)
    with pytest.raises(ValidationError, match="missing: rollback_plan"):
        _submit(owner, deployed, **{**PILOT, "rollback_plan": ""})
    message = _denied(owner, deployed, "DEPLOY-ROLLBACK-01", **{**PILOT, "rollback_plan": "   "})
    assert "needs a rollback plan (the plan is empty)" in message


def test_a_model_with_no_other_version_rolls_back_by_switching_off_as_its_plan_says(deployed, owner):
    _age_phase(15)
    message = _denied(owner, deployed, "DEPLOY-ROLLBACK-02", **{**PILOT, "rollback_plan": "Pull the kill switch."})
    assert message == (
        "eq-policy has no other version to return to, so its rollback is switching it off: the rollback plan "
        "must say how (the kill switch) and what happens to its open positions (unwound, flattened, closed out)."
    )
    assert _submit(owner, deployed, **PILOT).status == "pending"


def test_a_live_phase_names_a_version_to_return_to_when_there_is_one(
    deployed, owner, make_version, make_model, risk_manager
):
    earlier = make_version(model=deployed.model, version="0.9.0")
    force_fields(earlier, status="suspended")
    _age_phase(15)
    message = _denied(owner, deployed, "DEPLOY-ROLLBACK-02", **PILOT)
    assert message == (
        "Phase pilot of eq-policy trades real capital: name the version to roll back to, one of: 0.9.0 (suspended)"
    )
    elsewhere = make_version(model=make_model(name="other-model"), version="0.9.0")
    force_fields(elsewhere, status="approved")
    message = _denied(
        owner, deployed, "DEPLOY-ROLLBACK-02", **PILOT, rollback_target={"version_id": elsewhere.pk, "label": "0.9.0"}
    )
    assert message.startswith(f"The rollback target 0.9.0 (version id {elsewhere.pk}) is not a version of eq-policy")
    request = _submit(owner, deployed, **PILOT, rollback_target={"version_id": earlier.pk, "label": "0.9.0"})
    _approve(request, risk_manager)
    assert Deployment.objects.get(status="active").rollback_target == earlier


def _sample(at: dt.datetime, pnl: str) -> dict[str, Any]:
    return {"at": at.isoformat(), "instrument": "NVDA", "predicted": 1, "outcome": 1, "trade_count": 1, "pnl": pnl}


def test_a_phase_whose_realised_daily_loss_broke_its_limit_is_not_promoted(deployed, owner, risk_manager):
    # In pilot with a maximum daily loss of 160,000, for 40 days.
    _age_phase(15)
    _approve(_submit(owner, deployed, **PILOT), risk_manager)
    live = _age_phase(40)
    day = live.phase_started_at.replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)
    samples = [
        _sample(day, "-100000.00"),
        _sample(day + timedelta(hours=1), "-60000.00"),  # the first day loses exactly the limit
        _sample(day + timedelta(days=1), "30000.00"),
    ]
    monitoring_ingest(actor=SystemActor("gateway"), model=deployed.model, batch_id="b1", samples=samples)
    limited = {**PILOT, "phase": "limited", "capital_limit": "20000000.00", "max_daily_loss": "400000.00"}
    request = _submit(owner, deployed, **limited)
    assert _outcomes(request)["DEPLOY-EXIT-02"] == "pass"
    services.signoff_withdraw(actor=owner, request=request, reason="One more day.")
    worst = day + timedelta(days=2)
    monitoring_ingest(
        actor=SystemActor("gateway"), model=deployed.model, batch_id="b2", samples=[_sample(worst, "-160000.01")]
    )
    message = _denied(owner, deployed, "DEPLOY-EXIT-02", **limited)
    assert message == (
        f"Phase pilot of eq-policy lost 160000.01 USD on {worst.date().isoformat()}, more than its maximum daily "
        "loss of 160000.00: it is not promoted on that record."
    )


# The input document: the live deployment's facts. ----------------------------------------


def test_the_document_carries_the_live_deployment_in_the_shape_the_policy_tests_use(deployed, owner, make_version):
    earlier = make_version(model=deployed.model, version="0.9.0")
    force_fields(earlier, status="approved")
    live = force_fields(Deployment.objects.get(), rollback_target=earlier)
    built = document.build_input_document(version=deployed, trigger="deployment:pilot", requested_by=owner)
    assert built["live_deployment"]["id"] == live.pk
    assert built["live_deployment"]["rollback_target"] == {"version_id": earlier.pk, "label": "0.9.0"}
    assert built["live_deployment"]["phase"] == "shadow"
    assert built["live_deployment"]["phase_pnl"] == {
        "samples": 0,
        "days": 0,
        "total": "0",
        "worst_day": None,
        "worst_day_loss": "0",
    }
    assert built["rollback_candidates"] == [{"version_id": earlier.pk, "label": "0.9.0", "status": "approved"}]
    # The earlier version's own document never offers itself as its rollback target.
    other = document.build_input_document(version=earlier, trigger="approved->deployed", requested_by=owner)
    assert [c["version_id"] for c in other["rollback_candidates"]] == [deployed.pk]

    base = loader.parse_yaml((loader.DEFAULT_DIRECTORY / "tests" / "base_input.yaml").read_text())

    def keys(value: Any, prefix: str = "") -> set[str]:
        out = set()
        for key, item in value.items():
            out.add(prefix + key)
            if isinstance(item, dict):
                out |= keys(item, f"{prefix}{key}.")
        return out

    assert keys(base["live_deployment"]) == keys(built["live_deployment"])
    assert set(base["rollback_candidates"][0]) == set(built["rollback_candidates"][0])


def test_a_phase_with_an_unresolved_monitoring_alert_is_not_promoted(deployed, owner, compliance):
    from audit.scope import audited_change
    from audit.services import record_event
    from governance import anomaly_services
    from governance.models import MonitoringAlert

    live = _age_phase(15)
    with audited_change():  # test set-up: an alert as the anomaly evaluation leaves it
        alert = MonitoringAlert.objects.create(
            deployment=live,
            model=live.model,
            version=live.version,
            rule_id="MON-TRADES-01",
            actions=["alert"],
            severity="medium",
            message="Trade count far from its trailing norm.",
            raised_at=timezone.now(),
            policy_decision=live.signoff.latest_decision,
        )
        record_event(actor=SystemActor("tests"), action="test.state_forced", target=alert, after={"pk": alert.pk})
    message = _denied(owner, deployed, "DEPLOY-EXIT-01", **PILOT)
    assert message.startswith("Phase shadow of eq-policy has unresolved monitoring alerts (MON-TRADES-01 open since ")
    alert = anomaly_services.monitoring_alert_acknowledge(actor=compliance, alert=alert, comment="Looking.")
    assert "MON-TRADES-01 acknowledged since" in _denied(owner, deployed, "DEPLOY-EXIT-01", **PILOT)
    anomaly_services.monitoring_alert_resolve(actor=compliance, alert=alert, resolution="A holiday: fewer trades.")
    assert _outcomes(_submit(owner, deployed, **PILOT))["DEPLOY-EXIT-01"] == "pass"
