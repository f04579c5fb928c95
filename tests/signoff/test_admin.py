"""The sign-off admin: scoped pages, the attention filter, decisions and withdrawals through
the change page's buttons (services as the logged-in user), refusals as messages that change
nothing, the owner's add form, findings, policy sets and decisions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from audit.models import Event
from audit.services import SystemActor
from governance import services
from governance import services as governance_services
from governance.models import Finding, SignOffRequest, SignOffResponse
from governance.roles import Role
from tests.factories import UserFactory, force_fields
from tests.fixtures_deployment import EVIDENCE

pytestmark = pytest.mark.django_db

LIST = "/admin/governance/signoffrequest/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _change(request) -> str:
    return f"{LIST}{request.pk}/change/"


def _submit(owner, version):
    return services.signoff_submit(
        actor=owner, version=version, to_status="approved", justification="Validated.", evidence=EVIDENCE
    )


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _ids(response) -> list[int]:
    return [obj.pk for obj in response.context["cl"].result_list]


@pytest.fixture
def stranger(other_desk):
    user = UserFactory(username="sam", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    governance_services.membership_set(actor=SystemActor("tests"), user=user, desk=other_desk)
    return user


def test_pages_render_for_each_role(approvable, owner, validator, risk_manager, compliance):
    request = _submit(owner, approvable)
    finding = services.finding_raise(
        actor=validator,
        version=approvable,
        severity="low",
        title="Thin sample",
        description="d",
        remediation_owner=owner,
        due_date=timezone.now().date() + dt.timedelta(days=7),
    )
    pages = [
        LIST,
        _change(request),
        "/admin/governance/finding/",
        f"/admin/governance/finding/{finding.pk}/change/",
    ]
    oversight = [
        "/admin/governance/policyset/",
        f"/admin/governance/policyset/{request.latest_decision.policy_set_id}/change/",
        "/admin/governance/policydecision/",
        f"/admin/governance/policydecision/{request.latest_decision_id}/change/",
    ]
    for user, urls in ((owner, pages), (risk_manager, pages + oversight), (compliance, pages + oversight)):
        client = _client(user)
        for url in urls:
            assert client.get(url, secure=True).status_code == 200, (user, url)
    page = _client(compliance).get(_change(request), secure=True).content.decode()
    assert "APPROVE-BASE-01" in page and "Approve</button>" in page and "VAL-2026-014" in page
    decision = _client(compliance).get(
        f"/admin/governance/policydecision/{request.latest_decision_id}/change/", secure=True
    )
    assert "require_approval" in decision.content.decode() and "&quot;signoff&quot;" in decision.content.decode()
    assert "object_type=governance.policydecision" in decision.content.decode()


def test_an_outsider_sees_none_of_it(approvable, owner, validator, stranger):
    request = _submit(owner, approvable)
    finding = services.finding_raise(
        actor=validator,
        version=approvable,
        severity="low",
        title="t",
        description="d",
        remediation_owner=owner,
        due_date=timezone.now().date() + dt.timedelta(days=7),
    )
    client = _client(stranger)
    assert _ids(client.get(LIST, secure=True)) == []
    assert _ids(client.get("/admin/governance/finding/", secure=True)) == []
    for url in (_change(request), f"/admin/governance/finding/{finding.pk}/change/"):
        response = client.get(url, secure=True)
        assert response.status_code == 302 and response.url == "/admin/", url  # "does not exist"
    # A forged decision on a request out of scope changes nothing.
    before = SignOffResponse.objects.count()
    response = client.post(_change(request), {"_signoff": "withdraw", "signoff_comment": "x"}, secure=True)
    assert response.status_code == 302 and response.url == "/admin/"
    request.refresh_from_db()
    assert request.status == "pending" and SignOffResponse.objects.count() == before
    # Policy decisions: no permission, no page.
    assert client.get("/admin/governance/policydecision/", secure=True).status_code == 403


def test_approving_on_the_change_page_completes_the_request(approvable, owner, risk_manager, compliance):
    request = _submit(owner, approvable)
    response = _client(risk_manager).post(
        _change(request), {"_signoff": "approve", "signoff_comment": "Limits fine."}, secure=True
    )
    assert response.status_code == 302 and response.url == _change(request)
    assert "now pending" in _messages(response)[0]
    response = _client(compliance).post(
        _change(request), {"_signoff": "approve", "signoff_comment": "Exceptions reviewed."}, secure=True
    )
    assert "now approved" in _messages(response)[0]
    request.refresh_from_db()
    approvable.refresh_from_db()
    assert request.status == "approved" and approvable.status == "approved"
    assert list(request.responses.values_list("approver_label", "comment")) == [
        ("rhea", "Limits fine."),
        ("chloe", "Exceptions reviewed."),
    ]


def test_reject_and_withdraw_buttons(approvable, owner, risk_manager):
    request = _submit(owner, approvable)
    response = _client(owner).post(_change(request), {"_signoff": "withdraw", "signoff_comment": "Later."}, secure=True)
    assert "withdrawn" in _messages(response)[0]
    request.refresh_from_db()
    assert request.status == "withdrawn"
    again = _submit(owner, approvable)
    _client(risk_manager).post(_change(again), {"_signoff": "reject", "signoff_comment": "No."}, secure=True)
    again.refresh_from_db()
    assert again.status == "rejected"


@pytest.mark.parametrize(
    ("actor", "data", "message"),
    [
        ("risk_manager", {"_signoff": "approve", "signoff_comment": ""}, "comment"),
        ("owner", {"_signoff": "approve", "signoff_comment": "mine"}, "may not approve"),
        ("risk_manager", {"_signoff": "withdraw", "signoff_comment": "not mine"}, "may not withdraw"),
        ("risk_manager", {"_signoff": "explode", "signoff_comment": "x"}, "explode"),
    ],
)
def test_refusals_are_messages_and_change_nothing(request, approvable, owner, actor, data, message):
    signoff = _submit(owner, approvable)
    before = (SignOffResponse.objects.count(), signoff.status)
    response = _client(request.getfixturevalue(actor)).post(_change(signoff), data, secure=True)
    assert response.status_code == 302
    shown = _messages(response)
    assert shown and shown[0].startswith("Nothing was changed") and message in shown[0], shown
    signoff.refresh_from_db()
    assert (SignOffResponse.objects.count(), signoff.status) == before


def test_a_segregation_refusal_is_audited_though_nothing_changes(approvable, owner, risk_manager):
    owner.groups.add(*risk_manager.groups.all())
    signoff = _submit(owner, approvable)
    response = _client(owner).post(_change(signoff), {"_signoff": "approve", "signoff_comment": "self"}, secure=True)
    assert "SOD-8" in _messages(response)[0]
    assert Event.objects.filter(action="sod.refused", after__rule="SOD-8").exists()
    signoff.refresh_from_db()
    assert signoff.status == "pending"


def test_attention_filter_and_the_compliance_officers_default(approvable, owner, compliance, risk_manager):
    pending = _submit(owner, approvable)
    services.signoff_withdraw(actor=owner, request=pending, reason="redo")
    overdue = _submit(owner, approvable)
    force_fields(overdue, due_at=timezone.now() - dt.timedelta(hours=1))
    client = _client(compliance)
    # Compliance officers land on what needs attention; "All" shows everything.
    assert _ids(client.get(LIST, secure=True)) == [overdue.pk]
    assert sorted(_ids(client.get(LIST, {"attention": "all"}, secure=True))) == [pending.pk, overdue.pk]
    assert _ids(client.get(LIST, {"attention": "overdue"}, secure=True)) == [overdue.pk]
    assert _ids(client.get(LIST, {"attention": "blocked"}, secure=True)) == []
    assert _ids(client.get(LIST, {"attention": "expired"}, secure=True)) == []
    # Others start from the full list.
    assert len(_ids(_client(risk_manager).get(LIST, secure=True))) == 2
    page = client.get(LIST, {"attention": "all"}, secure=True).content.decode()
    assert "APPROVE-BASE-01 0/1" in page


def test_the_owner_submits_through_the_add_form(approvable, owner, stranger):
    client = _client(owner)
    page = client.get(f"{LIST}add/", secure=True)
    assert page.status_code == 200
    assert approvable.pk in [v.pk for v in page.context["adminform"].form.fields["version"].queryset]
    data = {
        "version": approvable.pk,
        "to_status": "approved",
        "justification": "Validated by victor.",
        "evidence": "Validation report | VAL-2026-014\nBacktest | BT-7",
    }
    response = client.post(f"{LIST}add/", data, secure=True)
    created = SignOffRequest.objects.get()
    assert response.status_code == 302 and response.url == _change(created)
    assert created.requested_by == owner and created.evidence[1] == {"title": "Backtest", "reference": "BT-7"}
    # Bad lines are named; a version out of scope is not a choice; nothing is created.
    response = client.post(f"{LIST}add/", {**data, "evidence": "no bar here"}, secure=True)
    assert response.status_code == 200 and "line 1" in response.content.decode()
    assert _client(stranger).post(f"{LIST}add/", data, secure=True).status_code == 200  # "select a valid choice"
    # A refusal by the service (already open) is a message.
    response = client.post(f"{LIST}add/", data, secure=True)
    assert "Nothing was saved" in _messages(response)[0] and "already" in _messages(response)[0]
    assert SignOffRequest.objects.count() == 1


def test_approvers_may_not_add_requests(risk_manager):
    assert _client(risk_manager).get(f"{LIST}add/", secure=True).status_code == 403


def test_findings_raise_change_and_overdue_filter(approvable, owner, validator):
    client = _client(validator)
    due = (timezone.now().date() + dt.timedelta(days=7)).isoformat()
    data = {
        "version": approvable.pk,
        "severity": "medium",
        "title": "Thin sample",
        "description": "250 days.",
        "remediation_owner": owner.pk,
        "due_date": due,
    }
    response = client.post("/admin/governance/finding/add/", data, secure=True)
    finding = Finding.objects.get()
    assert response.status_code == 302 and finding.raised_by == validator
    url = f"/admin/governance/finding/{finding.pk}/change/"
    change = {"status": "closed", "due_date": due, "resolution": "Extended.", "remediation_owner": owner.pk}
    response = client.post(url, {**change, "reason": ""}, secure=True)
    assert "Nothing was saved" in _messages(response)[-1] and "reason" in _messages(response)[-1]
    finding.refresh_from_db()
    assert finding.status == "open"
    client.post(url, {**change, "reason": "Checked."}, secure=True)
    finding.refresh_from_db()
    assert finding.status == "closed" and finding.closed_by == validator
    other = services.finding_raise(
        actor=validator,
        version=approvable,
        severity="low",
        title="Late",
        description="d",
        remediation_owner=owner,
        due_date=timezone.now().date() + dt.timedelta(days=1),
    )
    force_fields(other, due_date=timezone.now().date() - dt.timedelta(days=1))
    assert _ids(client.get("/admin/governance/finding/", {"overdue": "yes"}, secure=True)) == [other.pk]
    assert _ids(client.get("/admin/governance/finding/", {"severity__exact": "medium"}, secure=True)) == [finding.pk]


def test_owners_may_not_raise_findings_in_the_admin(owner):
    assert _client(owner).get("/admin/governance/finding/add/", secure=True).status_code == 403
