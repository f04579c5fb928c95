"""The sign-off, findings and policy API: thin adapters over the services and selectors.
Status codes and bodies, scoping (an outsider gets 404 and never sees a row), and refusals
that change nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from audit.models import Event
from audit.services import SystemActor
from governance import services
from governance import services as governance_services
from governance.models import Finding, PolicyDecision, SignOffRequest, SignOffResponse
from governance.roles import Role
from tests.factories import UserFactory, force_fields
from tests.fixtures_deployment import EVIDENCE, deployment

pytestmark = pytest.mark.django_db

SOON = dt.timedelta(days=14)


@pytest.fixture
def stranger(other_desk):
    """A model owner on another desk, who may also read policy decisions: sees none of ``desk``'s."""
    user = UserFactory(username="sam", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    governance_services.membership_set(actor=SystemActor("tests"), user=user, desk=other_desk)
    user.user_permissions.add(Permission.objects.get(codename="view_policydecision"))
    return user


def _submit_body(target, **overrides):
    body = {
        "version": target.pk,
        "to_status": "approved",
        "justification": "Validated by victor; ready for use.",
        "evidence": EVIDENCE,
    }
    body.update(overrides)
    return body


def _submit(owner, version):
    return services.signoff_submit(
        actor=owner, version=version, to_status="approved", justification="Validated.", evidence=EVIDENCE
    )


def _raise(validator, version, owner, **overrides):
    data = {
        "severity": "high",
        "title": "Look-ahead in a feature",
        "description": "The volatility feature reads the prediction day's close.",
        "remediation_owner": owner,
        "due_date": timezone.now().date() + SOON,
    }
    data.update(overrides)
    return services.finding_raise(actor=validator, version=version, **data)


def _counts():
    return (
        SignOffRequest.objects.count(),
        SignOffResponse.objects.count(),
        Finding.objects.count(),
        list(SignOffRequest.objects.values_list("status", flat=True).order_by("pk")),
    )


# --- Submitting -------------------------------------------------------------------------


def test_owner_submits_and_gets_the_request_with_required_approvals(approvable, owner, api):
    response = api(owner).post("/api/signoffs/", _submit_body(approvable), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["transition"] == "validated->approved"
    assert body["requested_by"] == "olivia" and body["version"] == approvable.pk
    assert body["evidence"] == EVIDENCE and body["deployment"] is None
    rules = {item["rule"]: item for item in body["required_approvals"]}
    assert rules["APPROVE-BASE-01"]["roles"] == ["risk manager"]
    assert body["latest_decision"] == PolicyDecision.objects.latest("decided_at").pk
    assert body["is_overdue"] is False and body["version_changed"] is False
    assert body["responses"] == []
    assert Event.objects.filter(action="signoff.submitted", object_id=str(body["id"])).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"justification": ""}, "justification"),
        ({"evidence": []}, "evidence"),
        ({"evidence": [{"title": "Report"}]}, "evidence"),
        ({"evidence": "a string"}, "evidence"),
        ({"deployment": deployment()}, "deployment"),
        ({"to_status": "nowhere"}, "to_status"),
        ({"version": "x"}, "version"),
    ],
)
def test_bad_submission_is_400_naming_the_field_and_changes_nothing(approvable, owner, api, overrides, field):
    before = _counts()
    response = api(owner).post("/api/signoffs/", _submit_body(approvable, **overrides), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert _counts() == before


def test_submission_for_a_direct_transition_is_409(approvable, owner, api):
    response = api(owner).post("/api/signoffs/", _submit_body(approvable, to_status="retired"), format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "invalid_transition"


def test_a_policy_denial_is_409_with_the_decision_and_the_rules(approvable, owner, validator, api):
    _raise(validator, approvable, owner)
    before = _counts()
    response = api(owner).post("/api/signoffs/", _submit_body(approvable), format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "policy_denied" and "FINDINGS-01" in body["detail"]
    assert [reason["id"] for reason in body["reasons"]] == ["FINDINGS-01"]
    assert body["reasons"][0]["references"]
    assert PolicyDecision.objects.filter(pk=body["decision"], outcome="deny").exists()
    assert _counts() == before


def test_a_version_out_of_scope_is_404_and_nothing_is_submitted(approvable, stranger, api):
    before = _counts()
    response = api(stranger).post("/api/signoffs/", _submit_body(approvable), format="json")
    assert response.status_code == 404
    assert _counts() == before


def test_someone_who_may_not_submit_is_403(approvable, risk_manager, api):
    response = api(risk_manager).post("/api/signoffs/", _submit_body(approvable), format="json")
    assert response.status_code == 403
    assert "add_signoffrequest" in response.json()["detail"]


def test_anonymous_is_401(api):
    assert api().get("/api/signoffs/").status_code == 401
    assert api().post("/api/signoffs/", {}, format="json").status_code == 401


# --- Deciding ---------------------------------------------------------------------------


def test_two_approvals_through_the_api_complete_the_request(approvable, owner, risk_manager, compliance, api):
    request = _submit(owner, approvable)
    url = f"/api/signoffs/{request.pk}/approve/"
    response = api(risk_manager).post(url, {"comment": "Limits fine."}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "pending"
    response = api(compliance).post(url, {"comment": "Exceptions reviewed."}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "approved" and body["closed_at"]
    assert [(r["approver"], r["verdict"], r["comment"]) for r in body["responses"]] == [
        ("rhea", "approve", "Limits fine."),
        ("chloe", "approve", "Exceptions reviewed."),
    ]
    approvable.refresh_from_db()
    assert approvable.status == "approved"
    # The owner tracks it through the API.
    detail = api(owner).get(f"/api/signoffs/{request.pk}/").json()
    assert detail["status"] == "approved" and detail["latest_decision"] == body["latest_decision"]


def test_reject_and_request_changes_then_amend(approvable, owner, risk_manager, compliance, api):
    request = _submit(owner, approvable)
    response = api(compliance).post(
        f"/api/signoffs/{request.pk}/request-changes/", {"comment": "Attach the stress test."}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "changes_requested"
    amend = {"justification": "Stress test attached.", "evidence": [*EVIDENCE, {"title": "ST", "reference": "ST-3"}]}
    response = api(owner).post(f"/api/signoffs/{request.pk}/amend/", amend, format="json")
    assert response.status_code == 200
    assert response.json()["round"] == 2 and response.json()["status"] == "pending"
    response = api(risk_manager).post(f"/api/signoffs/{request.pk}/reject/", {"comment": "No."}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert [r["round"] for r in response.json()["responses"]] == [1, 2]


def test_a_segregation_refusal_is_403_naming_the_rule_and_is_audited(approvable, owner, risk_manager, api):
    owner.groups.add(*risk_manager.groups.all())
    request = _submit(owner, approvable)
    before = _counts()
    response = api(owner).post(f"/api/signoffs/{request.pk}/approve/", {"comment": "self"}, format="json")
    assert response.status_code == 403
    assert response.json()["rule"] == "SOD-8" and "SOD-8" in response.json()["detail"]
    assert _counts() == before
    # The refusal's audit event outlives the refused request (no request-wide transaction).
    assert Event.objects.filter(action="sod.refused", after__rule="SOD-8").exists()


def test_a_missing_comment_is_400_and_a_closed_request_is_409(approvable, owner, risk_manager, api):
    request = _submit(owner, approvable)
    response = api(risk_manager).post(f"/api/signoffs/{request.pk}/approve/", {}, format="json")
    assert response.status_code == 400 and "comment" in response.json()
    response = api(owner).post(f"/api/signoffs/{request.pk}/withdraw/", {"reason": "Not now."}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    response = api(risk_manager).post(f"/api/signoffs/{request.pk}/approve/", {"comment": "ok"}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "conflict"


def test_only_the_requester_side_withdraws(approvable, owner, risk_manager, api):
    request = _submit(owner, approvable)
    response = api(risk_manager).post(f"/api/signoffs/{request.pk}/withdraw/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    request.refresh_from_db()
    assert request.status == "pending"


def test_version_changed_is_reported_and_approval_refused(approvable, owner, risk_manager, api):
    request = _submit(owner, approvable)
    force_fields(approvable, code_commit="f" * 40)
    body = api(owner).get(f"/api/signoffs/{request.pk}/").json()
    assert body["version_changed"] is True
    response = api(risk_manager).post(f"/api/signoffs/{request.pk}/approve/", {"comment": "ok"}, format="json")
    assert response.status_code == 409 and "changed since" in response.json()["detail"]


# --- Lists, filters and scope -----------------------------------------------------------


def test_list_filters_and_overdue(approvable, owner, compliance, api):
    request = _submit(owner, approvable)
    client = api(compliance)
    assert [r["id"] for r in client.get("/api/signoffs/").json()["results"]] == [request.pk]
    assert client.get("/api/signoffs/", {"status": "approved"}).json()["count"] == 0
    assert client.get("/api/signoffs/", {"to_status": "approved", "status": "pending"}).json()["count"] == 1
    assert client.get("/api/signoffs/", {"overdue": "true"}).json()["count"] == 0
    force_fields(request, due_at=timezone.now() - dt.timedelta(hours=1))
    overdue = client.get("/api/signoffs/", {"overdue": "true"}).json()
    assert [r["id"] for r in overdue["results"]] == [request.pk] and overdue["results"][0]["is_overdue"] is True
    assert client.get("/api/signoffs/", {"version": approvable.pk, "model": approvable.model_id}).json()["count"] == 1
    assert client.get("/api/signoffs/", {"ordering": "-due_at"}).status_code == 200


def test_an_outsider_never_sees_requests_findings_or_decisions(approvable, owner, validator, stranger, api):
    request = _submit(owner, approvable)
    finding = _raise(validator, approvable, owner, severity="low")
    decision = request.latest_decision
    client = api(stranger)
    for url in ("/api/signoffs/", "/api/findings/", "/api/policy-decisions/"):
        assert client.get(url).json()["count"] == 0, url
    for url in (
        f"/api/signoffs/{request.pk}/",
        f"/api/findings/{finding.pk}/",
        f"/api/policy-decisions/{decision.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    before = _counts()
    for action, body in (
        ("approve", {"comment": "x"}),
        ("reject", {"comment": "x"}),
        ("request-changes", {"comment": "x"}),
        ("withdraw", {"reason": "x"}),
        ("amend", {"justification": "x", "evidence": EVIDENCE}),
    ):
        assert client.post(f"/api/signoffs/{request.pk}/{action}/", body, format="json").status_code == 404
    assert client.patch(f"/api/findings/{finding.pk}/", {"status": "closed"}, format="json").status_code == 404
    assert _counts() == before
    # A filter naming an invisible version is refused like an unknown one.
    assert client.get("/api/signoffs/", {"version": approvable.pk}).status_code == 400


# --- Findings ---------------------------------------------------------------------------


def test_validator_raises_and_closes_a_finding_through_the_api(approvable, owner, validator, api):
    due = (timezone.now().date() + SOON).isoformat()
    body = {
        "version": approvable.pk,
        "severity": "medium",
        "title": "Thin validation sample",
        "description": "Only 250 days out of sample.",
        "remediation_owner": "olivia",
        "due_date": due,
    }
    response = api(validator).post("/api/findings/", body, format="json")
    assert response.status_code == 201, response.json()
    finding = response.json()
    assert finding["status"] == "open" and finding["raised_by"] == "victor" and finding["is_overdue"] is False
    url = f"/api/findings/{finding['id']}/"
    assert api(owner).patch(url, {"status": "in_remediation"}, format="json").json()["status"] == "in_remediation"
    # The owner may not close it; the validator closes it with a resolution and a reason.
    response = api(owner).patch(url, {"status": "closed", "resolution": "done", "reason": "done"}, format="json")
    assert response.status_code == 403
    response = api(validator).patch(url, {"status": "closed", "resolution": "Extended sample."}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = api(validator).patch(
        url, {"status": "closed", "resolution": "Extended sample.", "reason": "Re-run checked."}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "closed"
    assert response.json()["closed_by"] == "victor"


def test_finding_refusals(approvable, owner, validator, stranger, api):
    base = {
        "version": approvable.pk,
        "severity": "high",
        "title": "t",
        "description": "d",
        "remediation_owner": "olivia",
        "due_date": (timezone.now().date() + SOON).isoformat(),
    }
    before = _counts()
    assert api(owner).post("/api/findings/", base, format="json").status_code == 403
    assert api(stranger).post("/api/findings/", base, format="json").status_code == 404
    past = {**base, "due_date": "2000-01-01"}
    response = api(validator).post("/api/findings/", past, format="json")
    assert response.status_code == 400 and "due_date" in response.json()
    response = api(validator).post("/api/findings/", {**base, "remediation_owner": "sam"}, format="json")
    assert response.status_code == 400 and "remediation_owner" in response.json()
    response = api(validator).post("/api/findings/", {**base, "severity": "dire"}, format="json")
    assert response.status_code == 400 and "severity" in response.json()
    assert _counts() == before


def test_finding_filters(approvable, owner, validator, compliance, api):
    low = _raise(validator, approvable, owner, severity="low")
    high = _raise(validator, approvable, owner, severity="high")
    force_fields(low, due_date=timezone.now().date() - dt.timedelta(days=1))
    client = api(compliance)
    assert [f["id"] for f in client.get("/api/findings/", {"severity": "high"}).json()["results"]] == [high.pk]
    assert [f["id"] for f in client.get("/api/findings/", {"overdue": "true"}).json()["results"]] == [low.pk]
    assert client.get("/api/findings/", {"status": "closed"}).json()["count"] == 0
    assert client.get("/api/findings/", {"version": approvable.pk}).json()["count"] == 2


# --- Policy sets and decisions ----------------------------------------------------------


def test_policy_sets_need_the_view_permission(active_set, owner, compliance, api):
    assert api(owner).get("/api/policy-sets/").status_code == 403
    assert api(owner).get("/api/policy-sets/active/").status_code == 403
    listed = api(compliance).get("/api/policy-sets/").json()["results"]
    assert [p["id"] for p in listed] == [active_set.pk]
    assert listed[0]["activated_by"] == "chloe" and "APPROVE-BASE-01" in listed[0]["rule_ids"]
    assert listed[0]["files"] and "text" not in listed[0]["files"][0]
    detail = api(compliance).get(f"/api/policy-sets/{active_set.pk}/").json()
    assert detail["files"][0]["text"]
    active = api(compliance).get("/api/policy-sets/active/")
    assert active.status_code == 200 and active.json()["id"] == active_set.pk and active.json()["is_active"]


def test_no_active_policy_set_is_404(compliance, api):
    assert api(compliance).get("/api/policy-sets/active/").status_code == 404


def test_policy_decisions_list_and_detail(approvable, owner, compliance, api):
    request = _submit(owner, approvable)
    client = api(compliance)
    listed = client.get("/api/policy-decisions/", {"version": approvable.pk, "outcome": "require_approval"}).json()
    assert [d["id"] for d in listed["results"]] == [request.latest_decision_id]
    assert "input_document" not in listed["results"][0]
    assert client.get("/api/policy-decisions/", {"trigger": "validated->approved"}).json()["count"] == 1
    assert client.get("/api/policy-decisions/", {"outcome": "deny"}).json()["count"] == 0
    detail = client.get(f"/api/policy-decisions/{request.latest_decision_id}/").json()
    assert detail["input_document"]["signoff"]["requested_by"]["username"] == "olivia"
    assert {r["id"] for r in detail["results"]} >= {"APPROVE-BASE-01"}
    assert detail["outcome"] == "require_approval" and detail["required_approvals"]


def test_schema_describes_the_signoff_api(api):
    document = api().get("/api/schema/", {"format": "json"}).json()
    for path in (
        "/api/signoffs/",
        "/api/signoffs/{id}/approve/",
        "/api/signoffs/{id}/request-changes/",
        "/api/findings/{id}/",
        "/api/policy-sets/active/",
        "/api/policy-decisions/{id}/",
    ):
        assert path in document["paths"], path
    assert "SignOffStatusEnum" in document["components"]["schemas"]
