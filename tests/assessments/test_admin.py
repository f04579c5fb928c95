"""The risk-assessment admin: scoped, read-only pages, a Cancel button and the action on versions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from audit.models import Event
from governance.roles import Role
from models_registry import assessment_services, services
from models_registry.models import RiskAssessment
from tests.assessments.conftest import FAST
from tests.assessments.test_rating import outcome
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/models_registry/riskassessment/"
VERSIONS = "/admin/models_registry/modelversion/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def stub_pipeline(monkeypatch):
    def use(**metrics: Any) -> None:
        monkeypatch.setattr(assessment_services.pipeline, "run", lambda inputs, progress: outcome(**metrics))

    use()
    return use


@pytest.fixture
def finished(assessable, owner, stub_pipeline):
    def run(**metrics: Any) -> RiskAssessment:
        stub_pipeline(**metrics)
        assessment, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
        return assessment_services.assessment_execute(assessment_id=assessment.pk)

    return run


def test_the_list_shows_progress_and_rating_and_filters(owner, active_set, finished):
    assessment = finished(pbo=0.9)
    queued, _ = services.assessment_request(actor=owner, version=assessment.version, kind="backtest", parameters=FAST)
    page = _client(owner).get(CHANGELIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert "nvda-direction" in html and "100% · done" in html and "0% · waiting in the queue" in html
    assert "#c62828" in html and ">Red<" in html and "not rated" in html
    for query in ("?status__exact=queued", "?kind__exact=backtest", "?rating__exact=red"):
        assert _client(owner).get(CHANGELIST + query).status_code == 200
    filtered = _client(owner).get(CHANGELIST + "?rating__exact=red").context["cl"].result_list
    assert [a.pk for a in filtered] == [assessment.pk]
    assert queued.pk in [
        a.pk for a in _client(owner).get(CHANGELIST + "?status__exact=queued").context["cl"].result_list
    ]


def test_the_change_page_shows_metrics_rules_findings_and_the_curve(owner, active_set, finished):
    assessment = finished(drifted_features=3)
    page = _client(owner).get(f"{CHANGELIST}{assessment.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "drifted_features" in html and "0.2000" in html  # metrics table
    assert "ASSESS-DRIFT-01" in html and "warn" in html  # the rule that decided it
    assert f"/admin/governance/policydecision/{assessment.rating_decision_id}/change/" in html
    finding = assessment.findings.get()
    assert f"/admin/governance/finding/{finding.pk}/change/" in html
    assert "2011-01-03 to 2011-01-04, 2 points" in html and "1.1000" in html  # equity curve summary
    assert "artifact_sha256" in html and "scikit-learn" in html  # inputs and environment
    assert 'name="_assessment"' not in html  # finished: no Cancel button
    assert 'name="_save"' not in html  # read-only


def test_cancel_button_on_a_queued_assessment(owner, assessable):
    queued, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    url = f"{CHANGELIST}{queued.pk}/change/"
    assert 'name="_assessment" value="cancel"' in _client(owner).get(url).content.decode()
    response = _client(owner).post(url, {"_assessment": "cancel", "cancel_reason": "wrong split"})
    assert response.status_code == 302
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    assert Event.objects.get(action="risk_assessment.cancelled", object_id=str(queued.pk)).reason == "wrong split"
    # Again: refused with the reason, nothing changed.
    again = _client(owner).post(url, {"_assessment": "cancel"}, follow=True)
    assert any("already cancelled" in m for m in _messages(again))


def test_a_running_assessment_is_asked_to_stop(owner, assessable):
    running, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    assessment_services.assessment_start(actor=owner, assessment=running)
    response = _client(owner).post(f"{CHANGELIST}{running.pk}/change/", {"_assessment": "cancel"}, follow=True)
    assert any("next step" in m for m in _messages(response))
    running.refresh_from_db()
    assert running.status == "running" and running.cancel_requested


def test_outsiders_see_nothing_and_cannot_cancel(owner, outsider, assessable):
    queued, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    client = _client(outsider)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(f"{CHANGELIST}{queued.pk}/change/").status_code in (302, 403, 404)
    client.post(f"{CHANGELIST}{queued.pk}/change/", {"_assessment": "cancel"})
    queued.refresh_from_db()
    assert queued.status == "queued"


def test_run_a_full_assessment_from_versions(
    owner, active_set, assessable, make_version, stub_pipeline, django_capture_on_commit_callbacks
):
    ready = assessable()
    unready = make_version(model=ready.model, version="2.0.0")  # no target
    client = _client(owner)
    action = {"action": "run_full_assessment", "_selected_action": [ready.pk, unready.pk]}
    with django_capture_on_commit_callbacks(execute=True):  # the job is sent (here: run) at commit
        first = _messages(client.post(VERSIONS, action, follow=True))
    assessment = RiskAssessment.objects.get(version=ready)
    assert assessment.kind == "full" and assessment.requested_by == owner
    assert assessment.status == "succeeded" and assessment.rating == "green"
    assert any(f"risk assessment {assessment.pk}" in m and "requested" in m for m in first)
    assert any("2.0.0: not assessed" in m and "no target" in m for m in first)
    again = _messages(client.post(VERSIONS, {**action, "_selected_action": [ready.pk]}, follow=True))
    assert any("already has these inputs" in m and "succeeded, rated green" in m for m in again)
    assert RiskAssessment.objects.count() == 1


def test_the_action_is_offered_only_to_those_who_may_request(owner, assessable):
    version = assessable()
    developer = UserFactory(username="dev", roles=[Role.MODEL_DEVELOPER], is_staff=True)
    services.model_access_grant(actor=owner, user=developer, model=version.model, permission="view_model")
    assert "run_full_assessment" in _client(owner).get(VERSIONS).content.decode()
    page = _client(developer).get(VERSIONS)
    assert page.status_code == 200 and "run_full_assessment" not in page.content.decode()
    _client(developer).post(VERSIONS, {"action": "run_full_assessment", "_selected_action": [version.pk]})
    assert not RiskAssessment.objects.exists()
