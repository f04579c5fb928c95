"""The sign-off workflow: submission, four-eyes approval, re-evaluation at the last approval,
rejection, changes, withdrawal, expiry; every refusal changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import Event
from audit.verify import verify_log
from governance import services
from governance.errors import Conflict, InvalidTransition, NotPermitted, PolicyDenied, SignOffRequired
from governance.models import Finding, PolicyDecision, SignOffRequest, SignOffResponse
from governance.roles import Role
from models_registry import services as registry_services
from tests.factories import UserFactory, force_fields
from tests.fixtures_deployment import EVIDENCE, deployment

pytestmark = pytest.mark.django_db


def _submit(owner, version, **overrides):
    data = {"to_status": "approved", "justification": "Validated by victor; ready for use.", "evidence": EVIDENCE}
    data.update(overrides)
    return services.signoff_submit(actor=data.pop("actor", owner), version=version, **data)


def _state():
    return (
        SignOffRequest.objects.count(),
        SignOffResponse.objects.count(),
        list(SignOffRequest.objects.values_list("status", "round").order_by("pk")),
        Finding.objects.count(),
    )


def test_submission_records_the_request_the_approvals_the_policies_require_and_tells_approvers(
    approvable, owner, risk_manager, compliance, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request = _submit(owner, approvable)
    assert request.status == "pending" and request.round == 1
    assert request.transition == "validated->approved"
    needed = {item["rule"]: item for item in request.required_approvals}
    assert needed["APPROVE-BASE-01"]["roles"] == ["risk manager"] and not needed["APPROVE-BASE-01"]["satisfied"]
    assert needed["PERF-EVIDENCE-02"]["count"] == 2
    assert request.latest_decision.outcome == "require_approval"
    assert request.latest_decision.input_document["signoff"]["requested_by"]["username"] == "olivia"
    assert request.expires_at - request.submitted_at == dt.timedelta(days=30)
    event = Event.objects.get(action="signoff.submitted")
    assert event.object_id == str(request.pk) and event.after["justification"] == request.justification
    # The approvers who may decide it are told; the requester and developers are not.
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["chloe@example.com", "rhea@example.com"]
    assert "APPROVE-BASE-01" in mail.outbox[0].body and "VAL-2026-014" in mail.outbox[0].body


def test_the_last_approval_re_evaluates_and_makes_the_transition(
    approvable, owner, risk_manager, compliance, django_capture_on_commit_callbacks
):
    request = _submit(owner, approvable)
    request = services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="Limits fine.")
    assert request.status == "pending"
    assert {i["rule"]: i["approved_by"] for i in request.required_approvals}["APPROVE-BASE-01"] == ["rhea"]
    approvable.refresh_from_db()
    assert approvable.status == "validated"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request = services.signoff_respond(actor=compliance, request=request, verdict="approve", comment="Exc. ok.")
    assert request.status == "approved" and request.closed_at is not None
    approvable.refresh_from_db()
    assert approvable.status == "approved"
    assert request.latest_decision.outcome == "allow"
    approvals = request.latest_decision.input_document["signoff"]["approvals"]
    assert [a["username"] for a in approvals] == ["rhea", "chloe"]
    transition = Event.objects.get(action="model_version.approve")
    assert transition.actor_id == compliance.pk and "rhea, chloe" in transition.reason
    actions = list(Event.objects.filter(seq__gt=0).values_list("action", flat=True))
    assert actions.count("signoff.approve") == 2 and "signoff.completed" in actions
    assert mail.outbox[0].to == ["olivia@example.com"] and "approved" in mail.outbox[0].subject.lower()
    assert verify_log().ok


def test_a_rule_that_denies_at_the_last_approval_blocks_the_request_with_its_message_and_reference(
    approvable, owner, risk_manager, compliance, validator
):
    request = _submit(owner, approvable)
    services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="ok")
    finding = services.finding_raise(
        actor=validator,
        version=approvable,
        severity="high",
        title="Look-ahead in the volatility feature",
        description="The 20-day volatility uses the close of the prediction day.",
        remediation_owner=owner,
        due_date=timezone.now().date() + dt.timedelta(days=14),
    )
    request = services.signoff_respond(actor=compliance, request=request, verdict="approve", comment="ok")
    assert request.status == "blocked"
    denied = [r for r in request.reasons if r["outcome"] == "deny"]
    assert [r["id"] for r in denied] == ["FINDINGS-01"]
    assert f"{finding.pk} Look-ahead in the volatility feature (high)" in denied[0]["message"]
    assert "MiFID II RTS 6 Art. 9 (deficiencies remedied)" in denied[0]["references"]
    approvable.refresh_from_db()
    assert approvable.status == "validated"
    assert Event.objects.filter(action="signoff.blocked", object_id=str(request.pk)).exists()
    # A blocked request is closed: nobody decides it any more.
    with pytest.raises(Conflict, match="blocked"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="again")


def test_an_approver_rejects(approvable, owner, risk_manager, compliance, django_capture_on_commit_callbacks):
    request = _submit(owner, approvable)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request = services.signoff_respond(
            actor=risk_manager, request=request, verdict="reject", comment="Capacity assumptions not evidenced."
        )
    assert request.status == "rejected" and request.closed_at is not None
    approvable.refresh_from_db()
    assert approvable.status == "validated"
    assert "Capacity assumptions" in mail.outbox[0].body and mail.outbox[0].to == ["olivia@example.com"]
    with pytest.raises(Conflict):
        services.signoff_respond(actor=compliance, request=request, verdict="approve", comment="late")
    # A new request may follow the rejected one.
    assert _submit(owner, approvable).status == "pending"


def test_changes_requested_then_amended_starts_a_new_round(approvable, owner, risk_manager, compliance):
    request = _submit(owner, approvable)
    services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="fine by me")
    request = services.signoff_respond(
        actor=compliance, request=request, verdict="request_changes", comment="Attach the stress test."
    )
    assert request.status == "changes_requested"
    with pytest.raises(Conflict, match="changes requested"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="x")
    request = services.signoff_amend(
        actor=owner,
        request=request,
        justification="Stress test attached.",
        evidence=[*EVIDENCE, {"title": "Stress test", "reference": "ST-2026-03"}],
    )
    assert request.status == "pending" and request.round == 2
    # rhea's approval of round 1 no longer counts; she may approve again.
    assert all(not item["approved_by"] for item in request.required_approvals)
    services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="still fine")
    request = services.signoff_respond(actor=compliance, request=request, verdict="approve", comment="now fine")
    assert request.status == "approved"
    assert Event.objects.filter(action="signoff.amended").count() == 1


def test_four_eyes_requester_developers_and_roles(approvable, owner, risk_manager, compliance, make_version):
    request = _submit(owner, approvable)
    before = _state()
    # The requester holds no approving role.
    with pytest.raises(NotPermitted, match="one of: compliance officer, risk manager"):
        services.signoff_respond(actor=owner, request=request, verdict="approve", comment="mine")
    # A risk manager who developed a version of the model (SOD-2), audited as a refusal.
    developer = UserFactory(username="dora", roles=[Role.RISK_MANAGER, Role.MODEL_DEVELOPER])
    registry_services.model_access_grant(actor=owner, user=developer, model=approvable.model, permission="change_model")
    make_version(model=approvable.model, version="1.1.0", actor=developer)
    with pytest.raises(NotPermitted, match="SOD-2"):
        services.signoff_respond(actor=developer, request=request, verdict="approve", comment="looks good")
    assert Event.objects.filter(action="sod.refused", after__rule="SOD-2").exists()
    # Whoever validated the version may not approve it (SOD-6), even holding the role.
    validator = approvable.model.grants.get(permission__codename="validate_model").user
    validator.groups.add(*UserFactory(username="tmp", roles=[Role.RISK_MANAGER]).groups.all())
    with pytest.raises(NotPermitted, match="SOD-6"):
        services.signoff_respond(actor=validator, request=request, verdict="approve", comment="I validated it")
    # Once per round.
    services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="ok")
    with pytest.raises(Conflict, match="already answered"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="ok again")
    # An approval nobody still needs: rhea satisfied APPROVE-BASE-01; a second risk manager
    # still counts for PERF-EVIDENCE-02, so refuse a role no open requirement names.
    auditor = UserFactory(username="ivy", roles=[Role.INTERNAL_AUDITOR])
    with pytest.raises(NotPermitted, match="may not approve"):
        services.signoff_respond(actor=auditor, request=request, verdict="approve", comment="n/a")
    assert SignOffResponse.objects.count() == before[1] + 1


def test_the_requester_of_a_signoff_may_not_decide_it(approvable, owner, risk_manager):
    # An owner who also holds the risk-manager role asks; the four-eyes rule refuses them.
    owner.groups.add(*risk_manager.groups.all())
    request = _submit(owner, approvable)
    with pytest.raises(NotPermitted, match="SOD-8"):
        services.signoff_respond(actor=owner, request=request, verdict="approve", comment="self")
    assert Event.objects.filter(action="sod.refused", after__rule="SOD-8").exists()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"to_status": "deployed"}, InvalidTransition, "cannot move from validated to deployed"),
        ({"to_status": "rejected"}, InvalidTransition, "not by sign-off"),
        ({"to_status": "flying"}, InvalidTransition, "unknown status"),
        ({"evidence": []}, ValidationError, "at least one item of evidence"),
        ({"evidence": [{"title": "report"}]}, ValidationError, "'reference' is required"),
        ({"evidence": [{"title": "r", "reference": "x", "url": "y"}]}, ValidationError, "unknown field"),
        ({"justification": "   "}, ValidationError, "justification is required"),
        ({"deployment": deployment()}, ValidationError, "only a deployment"),
    ],
)
def test_bad_submissions_are_refused_and_change_nothing(approvable, owner, change, error, match):
    before = _state(), Event.objects.count()
    with pytest.raises(error, match=match):
        _submit(owner, approvable, **change)
    assert (_state(), Event.objects.count()) == before


def test_only_someone_who_may_change_the_model_submits(approvable, risk_manager, validator, outsider):
    for actor in (risk_manager, validator, outsider):
        with pytest.raises(NotPermitted):
            _submit(None, approvable, actor=actor)
    assert SignOffRequest.objects.count() == 0


def test_one_open_request_per_transition(approvable, owner):
    first = _submit(owner, approvable)
    with pytest.raises(Conflict, match=f"sign-off request {first.pk}"):
        _submit(owner, approvable)


def test_a_policy_denial_at_submission_is_refused_with_the_rules_and_kept_as_a_decision(approvable, owner, validator):
    services.finding_raise(
        actor=validator,
        version=approvable,
        severity="critical",
        title="Wrong labels",
        description="Labels shifted by one day.",
        remediation_owner=owner,
        due_date=timezone.now().date(),
    )
    with pytest.raises(PolicyDenied, match="FINDINGS-01") as raised:
        _submit(owner, approvable)
    assert SignOffRequest.objects.count() == 0
    decision = PolicyDecision.objects.get(pk=raised.value.detail["decision"])
    assert decision.outcome == "deny" and raised.value.detail["reasons"][0]["id"] == "FINDINGS-01"


def test_an_approval_on_a_version_that_changed_since_submission_is_refused(approvable, owner, risk_manager):
    request = _submit(owner, approvable)
    force_fields(approvable, hyperparameters={"C": 10.0})
    before = _state()
    with pytest.raises(Conflict, match="changed since sign-off request"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="ok")
    assert _state() == before


def test_an_approval_after_the_version_moved_is_refused(approvable, owner, risk_manager, compliance):
    request = _submit(owner, approvable)
    registry_services.model_version_transition(actor=compliance, version=approvable, to_status="rejected")
    with pytest.raises(InvalidTransition, match="no longer be approved"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="ok")


def test_bad_responses_are_refused(approvable, owner, risk_manager):
    request = _submit(owner, approvable)
    with pytest.raises(ValidationError, match="comment"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment=" ")
    with pytest.raises(ValidationError, match="verdict"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="maybe", comment="hm")
    assert SignOffResponse.objects.count() == 0


def test_withdrawal_by_the_requester_only(approvable, owner, risk_manager):
    request = _submit(owner, approvable)
    with pytest.raises(NotPermitted):
        services.signoff_withdraw(actor=risk_manager, request=request, reason="not mine")
    with pytest.raises(ValidationError, match="reason"):
        services.signoff_withdraw(actor=owner, request=request, reason="")
    request = services.signoff_withdraw(actor=owner, request=request, reason="Retraining first.")
    assert request.status == "withdrawn"
    with pytest.raises(Conflict):
        services.signoff_withdraw(actor=owner, request=request, reason="again")


def test_requests_expire_after_thirty_days_by_default(
    approvable, owner, risk_manager, django_capture_on_commit_callbacks
):
    request = _submit(owner, approvable)
    assert services.signoff_expire_due(at=request.submitted_at + dt.timedelta(days=29)) == []
    later = request.submitted_at + dt.timedelta(days=30, seconds=1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.signoff_expire_due(at=later) == [request.pk]
    request.refresh_from_db()
    assert request.status == "expired"
    assert Event.objects.get(action="signoff.expired").actor_label == "system:signoff-expiry"
    assert "expired" in mail.outbox[0].body
    with pytest.raises(Conflict, match="expired"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="late")


def test_an_expired_but_not_yet_closed_request_cannot_be_decided(approvable, owner, risk_manager):
    request = _submit(owner, approvable)
    force_fields(request, expires_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(Conflict, match="expired at"):
        services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="late")


def test_the_expiry_job_runs_as_a_celery_task(approvable, owner):
    from governance.tasks import expire_signoffs

    request = _submit(owner, approvable)
    force_fields(request, expires_at=timezone.now() - dt.timedelta(minutes=1))
    assert expire_signoffs.delay().get() == [request.pk]


def test_with_a_policy_set_in_force_a_direct_approval_needs_a_signoff(approvable, compliance):
    with pytest.raises(SignOffRequired, match="submit a sign-off request") as raised:
        registry_services.model_version_transition(actor=compliance, version=approvable, to_status="approved")
    assert {item["rule"] for item in raised.value.detail["required_approvals"]} >= {"APPROVE-BASE-01"}
    approvable.refresh_from_db()
    assert approvable.status == "validated"
    # The refusal's decision is kept.
    assert PolicyDecision.objects.filter(pk=raised.value.detail["decision"], outcome="require_approval").exists()


def test_with_a_policy_set_in_force_a_denied_transition_is_refused(make_model, make_version, owner, active_set):
    model = make_model(name="no-problem-definition")
    version = make_version(model=model)
    registry_services.model_version_transition(actor=owner, version=version, to_status="in_development")
    with pytest.raises(PolicyDenied, match="DEV-PROBLEM-01"):
        registry_services.model_version_transition(actor=owner, version=version, to_status="submitted_for_validation")
    version.refresh_from_db()
    assert version.status == "in_development"


class TestDeployment:
    def test_a_deployment_needs_its_proposal(self, approved_version, owner):
        with pytest.raises(ValidationError, match="proposal"):
            _submit(owner, approved_version, to_status="deployed")
        with pytest.raises(ValidationError, match="rollback_plan"):
            _submit(owner, approved_version, to_status="deployed", deployment=deployment(rollback_plan=""))
        with pytest.raises(ValidationError, match="capital_limit"):
            _submit(owner, approved_version, to_status="deployed", deployment=deployment(capital_limit="lots"))

    def test_a_capital_limit_above_the_tiers_maximum_is_denied_at_submission(self, approved_version, owner):
        with pytest.raises(PolicyDenied, match="DEPLOY-CAPITAL-01"):
            _submit(owner, approved_version, to_status="deployed", deployment=deployment(capital_limit="50000000.01"))

    def test_a_risk_manager_approves_the_deployment(self, approved_version, owner, second_risk_manager):
        request = _submit(owner, approved_version, to_status="deployed", deployment=deployment())
        assert request.deployment["capital_limit"] == "5000000.00"
        request = services.signoff_respond(
            actor=second_risk_manager, request=request, verdict="approve", comment="Phase 1 limits agreed."
        )
        assert request.status == "approved"
        approved_version.refresh_from_db()
        assert approved_version.status == "deployed"
        assert request.latest_decision.input_document["deployment"]["phase"] == "shadow"
