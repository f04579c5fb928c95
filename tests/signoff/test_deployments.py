"""Deployments: opened by a deployment sign-off, promoted phase by phase, stopped by the kill
switch, lifted by compliance, reinstated by sign-off, rolled back in one action; the trading
permission follows every step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import Event
from audit.verify import verify_log
from governance import selectors, services
from governance.errors import Conflict, NotPermitted
from governance.models import Deployment
from tests.factories import force_fields
from tests.fixtures_deployment import deployment_request as _request

pytestmark = pytest.mark.django_db


def test_a_deployment_signoff_opens_the_first_phase_and_the_permission_allows_trading(deployed):
    live = Deployment.objects.get()
    assert (live.status, live.phase, str(live.capital_limit), live.instruments) == (
        "active",
        "shadow",
        "5000000.00",
        ["NVDA"],
    )
    assert deployed.status == "deployed"
    assert selectors.trading_permission(model_id=deployed.model_id) == {
        "allowed": True,
        "version": deployed.version,
        "phase": "shadow",
        "capital_limit": "5000000.00",
        "currency": "USD",
        "instruments": ["NVDA"],
        "reason": "deployed in phase shadow",
    }
    assert Event.objects.filter(action="deployment.started", object_id=str(live.pk)).exists()


def test_a_first_deployment_starts_in_the_first_phase(approved_version, owner):
    with pytest.raises(ValidationError, match="starts in phase shadow"):
        _request(owner, approved_version, phase="pilot")
    with pytest.raises(ValidationError, match="unknown phase"):
        _request(owner, approved_version, phase="moon")


def test_promotion_to_the_next_phase_goes_through_a_signoff(deployed, owner, second_risk_manager, risk_manager):
    with pytest.raises(ValidationError, match="the next phase is pilot"):
        _request(owner, deployed, phase="full")
    # The shadow phase has run its minimum duration (DEPLOY-DURATION-01).
    force_fields(Deployment.objects.get(), phase_started_at=timezone.now() - timedelta(days=15))
    request = _request(owner, deployed, phase="pilot", capital_limit="8000000.00", max_daily_loss="150000.00")
    assert request.trigger == "deployment:pilot" and request.latest_decision.trigger == "deployment:pilot"
    request = services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="Pilot ok.")
    assert request.status == "approved"
    live = Deployment.objects.get(status="active")
    assert (live.phase, str(live.capital_limit)) == ("pilot", "8000000.00")
    deployed.refresh_from_db()
    assert deployed.status == "deployed"
    assert Event.objects.filter(action="deployment.promoted").count() == 1


def test_a_promotion_beyond_the_tiers_capital_maximum_is_refused_with_the_rule(deployed, owner):
    from governance.errors import PolicyDenied

    with pytest.raises(PolicyDenied, match="DEPLOY-CAPITAL-01"):
        _request(owner, deployed, phase="pilot", capital_limit="99000000.00")


def test_the_kill_switch_stops_trading_at_once_and_only_compliance_lifts_it(
    deployed, owner, compliance, risk_manager, django_capture_on_commit_callbacks
):
    assert selectors.trading_permission(model_id=deployed.model_id)["allowed"]  # cached now
    with pytest.raises(ValidationError, match="reason"):
        services.kill_switch_engage(actor=owner, model=deployed.model, reason=" ")
    with django_capture_on_commit_callbacks(execute=True):
        live = services.kill_switch_engage(actor=owner, model=deployed.model, reason="Fat-finger alert from the desk.")
    assert live.kill_switch_engaged and live.status == "suspended"
    permission = selectors.trading_permission(model_id=deployed.model_id)
    assert not permission["allowed"] and permission["reason"] == "kill switch engaged: Fat-finger alert from the desk."
    deployed.refresh_from_db()
    assert deployed.status == "suspended"
    assert Event.objects.get(action="kill_switch.engaged").reason == "Fat-finger alert from the desk."
    # Pulling it again changes nothing.
    events = Event.objects.count()
    services.kill_switch_engage(actor=risk_manager, model=deployed.model, reason="again")
    assert Event.objects.count() == events
    # Reinstating needs the switch lifted, and only compliance lifts it.
    with pytest.raises(Conflict, match="kill switch"):
        _request(owner, deployed, phase="shadow")
    for actor in (owner, risk_manager):
        with pytest.raises(NotPermitted, match="lift_killswitch"):
            services.kill_switch_lift(actor=actor, model=deployed.model, reason="resolved")
    services.kill_switch_lift(actor=compliance, model=deployed.model, reason="Root cause fixed and tested.")
    assert not selectors.trading_permission(model_id=deployed.model_id)["allowed"]  # still suspended
    request = _request(owner, deployed, phase="shadow")
    assert request.transition == "suspended->deployed"
    with django_capture_on_commit_callbacks(execute=True):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="Resume.")
    assert selectors.trading_permission(model_id=deployed.model_id)["allowed"]
    assert verify_log().ok


def test_who_may_pull_the_kill_switch(deployed, validator, outsider):
    for actor in (validator, outsider):
        with pytest.raises(NotPermitted):
            services.kill_switch_engage(actor=actor, model=deployed.model, reason="no")
    assert not Deployment.objects.get().kill_switch_engaged


def test_a_model_that_is_not_deployed_has_no_permission_and_nothing_to_stop(approved_version, owner):
    assert selectors.trading_permission(model_id=approved_version.model_id)["reason"] == "not deployed"
    with pytest.raises(Conflict, match="nothing to stop"):
        services.kill_switch_engage(actor=owner, model=approved_version.model, reason="x")


def test_rollback_returns_to_the_approved_target_in_one_action(
    approved_version, risk_manager, deploy_newer, django_capture_on_commit_callbacks
):
    newer = deploy_newer()
    with django_capture_on_commit_callbacks(execute=True):
        restored = services.deployment_rollback(actor=risk_manager, model=newer.model, reason="Accuracy dropped.")
    newer.refresh_from_db()
    approved_version.refresh_from_db()
    assert (newer.status, approved_version.status) == ("suspended", "deployed")
    assert restored.version == approved_version and restored.status == "active" and restored.phase == "shadow"
    assert Deployment.objects.get(version=newer).status == "rolled_back"
    permission = selectors.trading_permission(model_id=newer.model_id)
    assert permission["allowed"] and permission["version"] == approved_version.version
    # The restored deployment names no further target.
    with pytest.raises(Conflict, match="no rollback target"):
        services.deployment_rollback(actor=risk_manager, model=newer.model, reason="again")
    assert verify_log().ok
