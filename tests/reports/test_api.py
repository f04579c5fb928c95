"""Reports API: request (202), status, download; bad input 400 with nothing stored; a report on
anything the caller may not see is a 404, and a regulator sees only reports on shared models."""

from __future__ import annotations

import hashlib

import pytest

from audit.models import Event
from governance.models import Report

pytestmark = pytest.mark.django_db


def test_request_poll_and_download(api, compliance, logged_model, no_report_cert, django_capture_on_commit_callbacks):
    client = api(compliance)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/reports/", {"report_type": "audit-trail", "model": logged_model.pk}, format="json")
    assert response.status_code == 202, response.content
    report_id = response.json()["id"]
    assert response["Location"] == f"/api/reports/{report_id}"

    status = client.get(f"/api/reports/{report_id}").json()
    assert status["status"] == "succeeded" and status["progress"] == 100
    assert status["checkpoint"]["root_hash"] == Report.objects.get(pk=report_id).checkpoint.root_hash
    download = client.get(f"/api/reports/{report_id}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert hashlib.sha256(download.content).hexdigest() == status["sha256"] == download["X-Content-SHA256"]
    assert [r["id"] for r in client.get("/api/reports/").json()["results"]] == [report_id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"report_type": "nope", "model": 1}, "report_type"),
        ({"report_type": "audit-trail"}, "model"),
        ({"report_type": "audit-trail", "period_from": "2026-03-02", "period_to": "2026-03-01"}, "period_from"),
        ({"report_type": "audit-trail", "period_from": "yesterday", "period_to": "2026-03-01"}, "period_from"),
        ({"model": 1}, "report_type"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(api, compliance, body, field):
    events = Event.objects.count()
    response = api(compliance).post("/api/reports/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Report.objects.count() == 0 and Event.objects.count() == events


def test_without_permission_403_and_invisible_subject_404(api, outsider, owner, compliance, logged_model):
    assert (
        api(outsider).post("/api/reports/", {"report_type": "audit-trail", "model": logged_model.pk}).status_code == 403
    )
    assert api(compliance).post("/api/reports/", {"report_type": "audit-trail", "model": 10**9}).status_code == 404
    assert api(owner).post("/api/reports/", {"report_type": "audit-trail", "model": logged_model.pk}).status_code == 403
    assert Report.objects.count() == 0


def test_a_regulator_fetches_only_reports_on_shared_models(
    api, generate, compliance, regulator, share, logged_model, other_model, no_report_cert
):
    share(logged_model)
    shared = generate(actor=compliance, report_type="audit-trail", model_id=logged_model.pk)
    unshared = generate(actor=compliance, report_type="audit-trail", model_id=other_model.pk)
    firmwide = generate(actor=compliance, report_type="audit-trail", period_from="2020-01-01", period_to="2020-01-01")
    assert {shared.status, unshared.status, firmwide.status} == {"succeeded"}
    client = api(regulator)
    for hidden in (unshared, firmwide):
        assert client.get(f"/api/reports/{hidden.pk}").status_code == 404
        assert client.get(f"/api/reports/{hidden.pk}/download").status_code == 404
    assert client.get(f"/api/reports/{shared.pk}").status_code == 200
    assert client.get(f"/api/reports/{shared.pk}/download").status_code == 200
    assert [r["id"] for r in client.get("/api/reports/").json()["results"]] == [shared.pk]
    # A regulator requests nothing.
    assert client.post("/api/reports/", {"report_type": "audit-trail", "model": logged_model.pk}).status_code == 403


def test_a_report_not_yet_issued_has_no_download(api, compliance, logged_model):
    response = api(compliance).post("/api/reports/", {"report_type": "audit-trail", "model": logged_model.pk})
    report_id = response.json()["id"]
    assert response.json()["status"] == "queued" and response.json()["download"] is None
    assert api(compliance).get(f"/api/reports/{report_id}/download").status_code == 409
