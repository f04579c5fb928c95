"""Reports admin: scoped list, request form calling the service, legal hold buttons."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import Event
from governance.models import Report

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_request_list_and_hold_through_the_admin(compliance, logged_model):
    client = _client(compliance)
    assert client.get("/admin/governance/report/add/").status_code == 200
    response = client.post(
        "/admin/governance/report/add/",
        {"report_type": "audit-trail", "model": logged_model.pk, "retention_class": "mifid"},
    )
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(
        f"/admin/governance/report/{report.pk}/change/"
    )
    assert report.retention_class == "mifid" and report.requested_by == compliance
    listing = client.get("/admin/governance/report/")
    assert listing.status_code == 200 and b"audit-trail" in listing.content
    assert client.get(f"/admin/governance/report/{report.pk}/change/").status_code == 200

    client.post(f"/admin/governance/report/{report.pk}/hold/", {"reason": "litigation"})
    assert Report.objects.get().legal_hold
    assert Event.objects.filter(action="report.legal_hold_set", object_id=str(report.pk)).exists()


def test_a_refused_request_changes_nothing_and_says_why(compliance):
    client = _client(compliance)  # logging in is an event of its own
    events = Event.objects.count()
    response = client.post("/admin/governance/report/add/", {"report_type": "audit-trail"}, follow=True)
    assert b"Nothing was requested" in response.content and b"needs a model" in response.content
    assert not Report.objects.exists() and Event.objects.count() == events


def test_someone_without_the_permission_sees_no_reports(outsider, compliance, logged_model):
    from governance import report_services

    report_services.report_request(actor=compliance, report_type="audit-trail", model_id=logged_model.pk)
    assert _client(outsider).get("/admin/governance/report/").status_code == 403
