"""Report requests refused with nothing stored; who may request what; failures; immutability,
retention and legal hold."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from audit.models import Event
from audit.scope import audited_change
from governance import report_services
from governance.errors import Conflict, NotPermitted
from governance.models import ImmutableReportError, Report
from governance.report_services import ReportNotFound
from governance.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
AT = {"report_type": "audit-trail"}


def _nothing_stored(events_before: int) -> None:
    assert Report.objects.count() == 0
    assert Event.objects.count() == events_before


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"report_type": "no-such-report", "model_id": None}, "report_type", "unknown report type 'no-such-report'"),
        (AT, "model", "needs a model, a period (from and to), or both"),
        (
            {**AT, "period_from": "2026-03-02", "period_to": "2026-03-01"},
            "period_from",
            "after",
        ),
        ({**AT, "period_from": "2026-03-01"}, "period_to", "needs both"),
        (
            {**AT, "period_from": "2026-02-30", "period_to": "2026-03-01"},
            "period_from",
            "not a date",
        ),
        (
            {**AT, "period_from": "2999-01-01", "period_to": "2999-01-02"},
            "period_from",
            "future",
        ),
        ({**AT, "model_id": "abc"}, "model", "not an id"),
        ({**AT, "version_id": 1}, "version", "not about one version"),
        (
            {**AT, "model_id": "MODEL", "retention_class": "forever"},
            "retention_class",
            "unknown",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(compliance, logged_model, kwargs, field, message):
    kwargs = {k: (logged_model.pk if v == "MODEL" else v) for k, v in kwargs.items()}
    events = Event.objects.count()
    with pytest.raises(ValidationError) as caught:
        report_services.report_request(actor=compliance, **kwargs)
    assert field in caught.value.message_dict
    assert message in " ".join(caught.value.message_dict[field])
    _nothing_stored(events)


def test_a_model_the_requester_cannot_see_is_not_found(logged_model):
    stranger = UserFactory(username="sam", roles=[Role.MODEL_OWNER])  # owns models, but not on olivia's desk
    events = Event.objects.count()
    for model_id in (logged_model.pk, 10**9):
        with pytest.raises(ReportNotFound, match=f"no model {model_id} that you can see"):
            report_services.report_request(actor=stranger, report_type="audit-trail", model_id=model_id)
    _nothing_stored(events)


def test_requests_need_the_permission_and_the_audit_trail_needs_the_whole_log(outsider, owner, logged_model):
    events = Event.objects.count()
    with pytest.raises(NotPermitted, match="request_report"):
        report_services.report_request(actor=outsider, report_type="audit-trail", model_id=logged_model.pk)
    # The owner may request reports and sees the model, but not the whole audit log.
    with pytest.raises(NotPermitted, match=r"audit\.view_event"):
        report_services.report_request(actor=owner, report_type="audit-trail", model_id=logged_model.pk)
    _nothing_stored(events)


def test_a_request_is_queued_with_its_event(compliance, logged_model):
    report = report_services.report_request(actor=compliance, report_type="audit-trail", model_id=logged_model.pk)
    assert report.status == "queued" and report.requested_by == compliance
    assert report.retention_class == "default"
    event = Event.objects.get(action="report.requested", object_id=str(report.pk))
    assert event.actor_label == "chloe" and event.after["model_id"] == logged_model.pk


def test_a_failing_job_ends_failed_with_the_reason_and_an_event(compliance, logged_model, settings, tmp_path):
    report = report_services.report_request(actor=compliance, report_type="audit-trail", model_id=logged_model.pk)
    # No audit signing key: the report cannot be bound to a signed checkpoint.
    settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE = tmp_path / "missing" / "key.pem"
    report = report_services.report_generate(report_id=report.pk)
    assert report.status == "failed"
    assert "signing key" in report.error.lower()
    assert report.file.name == "" and report.sha256 == ""
    failed = Event.objects.get(action="report.failed", object_id=str(report.pk))
    assert failed.reason == report.error
    # A redelivered message leaves it as it is.
    assert report_services.report_generate(report_id=report.pk).status == "failed"


@pytest.fixture
def issued(generate, compliance, logged_model, no_report_cert):
    report = generate(actor=compliance, report_type="audit-trail", model_id=logged_model.pk)
    assert report.status == "succeeded", report.error
    return report


def test_an_issued_report_cannot_be_changed_or_deleted(issued):
    stored = Report.objects.filter(pk=issued.pk).values().get()
    with audited_change():
        issued.sha256 = "0" * 64
        with pytest.raises(ImmutableReportError, match="sha256"):
            issued.save()
    with pytest.raises(ImmutableReportError, match="retained until"):
        issued.delete()
    assert Report.objects.filter(pk=issued.pk).values().get() == stored
    # Its stored file is checked against the recorded hash on every read.
    assert report_services.report_file(report=Report.objects.get(pk=issued.pk))


def test_an_altered_stored_file_is_refused(issued):
    with default_storage.open(issued.file.name, "wb") as handle:
        handle.write(b"%PDF-1.7 forged")
    with pytest.raises(Conflict, match="does not match its recorded SHA-256"):
        report_services.report_file(report=issued)


def test_removal_is_refused_under_retention_and_under_legal_hold(issued, compliance, risk_manager):
    assert issued.retain_until.date() == issued.finished_at.date().replace(year=issued.finished_at.year + 7)
    with pytest.raises(Conflict, match="retained until"):
        report_services.report_remove(actor=compliance, report=issued, reason="tidy up")
    with pytest.raises(NotPermitted, match="hold_report"):
        report_services.report_legal_hold_set(actor=risk_manager, report=issued, reason="litigation")
    with pytest.raises(ValidationError, match="reason"):
        report_services.report_legal_hold_set(actor=compliance, report=issued, reason="  ")
    held = report_services.report_legal_hold_set(actor=compliance, report=issued, reason="litigation 2026-17")
    assert held.legal_hold and held.legal_hold_by == compliance
    assert Event.objects.filter(action="report.legal_hold_set", object_id=str(issued.pk)).exists()

    after_retention = issued.retain_until + dt.timedelta(days=1)
    with time_machine.travel(after_retention, tick=False):
        with pytest.raises(Conflict, match="legal hold"):
            report_services.report_remove(actor=compliance, report=held, reason="retention over")
        released = report_services.report_legal_hold_release(actor=compliance, report=held, reason="case closed")
        assert not released.legal_hold
        name = released.file.name
        report_services.report_remove(actor=compliance, report=released, reason="retention over")
    assert not Report.objects.filter(pk=issued.pk).exists()
    # The audit events about it stay: the log is never removed.
    assert Event.objects.filter(action="report.removed", object_id=str(issued.pk)).exists()
    assert Event.objects.filter(action="report.issued", object_id=str(issued.pk)).exists()
    assert name  # the file is deleted on commit (the test's transaction never commits)


def test_a_second_hold_or_a_release_without_hold_is_a_conflict(issued, compliance):
    with pytest.raises(Conflict, match="not on legal hold"):
        report_services.report_legal_hold_release(actor=compliance, report=issued, reason="x")
    report_services.report_legal_hold_set(actor=compliance, report=issued, reason="first")
    with pytest.raises(Conflict, match="already on legal hold"):
        report_services.report_legal_hold_set(actor=compliance, report=issued, reason="second")


def test_an_extract_over_the_limit_fails_saying_to_narrow_it(compliance, logged_model, monkeypatch):
    from governance.reports.builders import audit_trail

    monkeypatch.setattr(audit_trail, "MAX_EVENTS", 2)
    report = report_services.report_request(actor=compliance, report_type="audit-trail", model_id=logged_model.pk)
    report = report_services.report_generate(report_id=report.pk)
    assert report.status == "failed"
    assert "more than 2: narrow the period" in report.error
