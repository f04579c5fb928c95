"""Periodic revalidation by tier, the sweep of stale runs, and their Celery beat job."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from audit.models import Event
from audit.services import SystemActor
from models_registry import assessment_services, revalidation
from models_registry.models import RiskAssessment
from models_registry.tasks import revalidate_due
from tests.assessments.conftest import FAST
from tests.conftest import celery_conf
from tests.factories import force_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(assessable):
    """An approved version (set-up only: the sign-off workflow has its own tests)."""

    def make(**kwargs):
        return force_fields(assessable(**kwargs), status="approved")

    return make


def _days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def _succeeded(version, owner, run_now, *, finished_days_ago: float, parameters=None) -> RiskAssessment:
    assessment, _ = run_now(actor=owner, version=version, parameters=parameters or dict(FAST))
    assert assessment.status == "succeeded", assessment.error
    return force_fields(assessment, finished_at=_days_ago(finished_days_ago))


def test_due_by_tier_interval_and_lifecycle_status(approved, assessable, owner, run_now, settings):
    settings.GOVERNANCE_REVALIDATION_DAYS_TIER_1 = 10
    settings.GOVERNANCE_REVALIDATION_DAYS_TIER_2 = 20
    settings.GOVERNANCE_REVALIDATION_DAYS_TIER_3 = 30
    version = approved()
    tier = version.model.risk_tier
    days = {1: 10, 2: 20, 3: 30}[tier]
    # Never assessed: due.
    assert [v.pk for v in revalidation.due_versions()] == [version.pk]
    assessment = _succeeded(version, owner, run_now, finished_days_ago=days - 1)
    assert revalidation.due_versions() == []
    force_fields(assessment, finished_at=_days_ago(days + 1))
    due = revalidation.due_versions()
    assert [v.pk for v in due] == [version.pk]
    assert due[0].last_assessed_at == RiskAssessment.objects.get(pk=assessment.pk).finished_at
    # A failed or partial assessment is not a revalidation.
    for status in ("deployed", "suspended"):
        force_fields(version, status=status)
        assert [v.pk for v in revalidation.due_versions()] == [version.pk]
    for status in ("validated", "retired", "rejected"):
        force_fields(version, status=status)
        assert revalidation.due_versions() == []
    # Another version of a model in a different tier is judged by its own tier.
    other = force_fields(assessable(model={"name": "nvda-other"}), status="approved")
    assert other.pk in {v.pk for v in revalidation.due_versions()}


def test_only_succeeded_full_assessments_count(approved, owner, run_now, settings):
    version = approved()
    run_now(actor=owner, version=version, kind="performance", parameters=dict(FAST))
    # Not run (the test's transaction never commits): failed while queued.
    failed, _ = assessment_services.assessment_request(actor=owner, version=version, parameters=FAST)
    assessment_services.assessment_fail(actor=SystemActor("tests"), assessment=failed, code="x", message="x")
    assert [v.pk for v in revalidation.due_versions()] == [version.pk]


def test_a_due_version_gets_a_full_assessment_requested_by_the_system(
    approved, owner, run_now, django_capture_on_commit_callbacks, settings
):
    version = approved()
    old = _succeeded(version, owner, run_now, finished_days_ago=400)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        report = revalidation.revalidation_request_due()
    assert len(sent) == 1  # its job, sent once committed
    new = RiskAssessment.objects.exclude(pk=old.pk).get()
    assert report.requested == [new.pk] and not report.unchanged and not report.skipped
    assert new.kind == "full" and new.status == "queued"
    assert new.requested_by is None and new.requested_by_label == "system:revalidation"
    # The firm's default parameters, not those of the last run.
    assert new.parameters == assessment_services.normalise_parameters({}, version=version)
    event = Event.objects.get(action="risk_assessment.requested", object_id=str(new.pk))
    assert event.actor_label == "system:revalidation"
    # While it waits, the next sweep returns it and creates nothing.
    with django_capture_on_commit_callbacks(execute=False) as sent:
        again = revalidation.revalidation_request_due()
    assert again.in_progress == [new.pk] and again.requested == [] and not sent
    assert RiskAssessment.objects.count() == 2


def test_a_due_version_is_run_again_even_with_unchanged_inputs(
    approved, owner, run_now, django_capture_on_commit_callbacks
):
    version = approved()
    # A succeeded full assessment with the default parameters, long ago: the revalidation is a
    # new, dated run (its occasion is part of the inputs), not that one handed back.
    defaults = assessment_services.normalise_parameters({}, version=version)
    assessment, _ = run_now(actor=owner, version=version, parameters=defaults)
    old = force_fields(assessment, finished_at=_days_ago(400))
    with django_capture_on_commit_callbacks(execute=False):
        report = revalidation.revalidation_request_due()
    new = RiskAssessment.objects.exclude(pk=old.pk).get()
    assert report.requested == [new.pk] and not report.unchanged
    assert new.inputs["occasion"].startswith("revalidation due ")
    assert {key: value for key, value in new.inputs.items() if key != "occasion"} == old.inputs
    # A second sweep the same day gets it back.
    with django_capture_on_commit_callbacks(execute=False):
        again = revalidation.revalidation_request_due()
    assert again.in_progress == [new.pk] and RiskAssessment.objects.count() == 2


def test_a_version_that_cannot_be_assessed_is_skipped_and_the_others_go_on(
    approved, django_capture_on_commit_callbacks
):
    broken = force_fields(approved(), target="")
    fine = approved(model={"name": "nvda-other"})
    with django_capture_on_commit_callbacks(execute=False):
        report = revalidation.revalidation_request_due()
    assert set(report.skipped) == {broken.pk}
    assert "has no target" in report.skipped[broken.pk]
    assert [a.version_id for a in RiskAssessment.objects.filter(pk__in=report.requested)] == [fine.pk]


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_stops_the_sweep_and_leaves_nothing_queued(approved, monkeypatch):
    # Committed for real, as in the beat job: each request's job is sent when it commits.

    from models_registry.tasks import run_risk_assessment

    def refuse(*args, **kwargs):
        raise BrokerDown("[Errno 111] Connection refused")

    monkeypatch.setattr(run_risk_assessment, "apply_async", refuse)
    approved()
    approved(model={"name": "nvda-other"})
    with celery_conf(task_always_eager=False):
        report = revalidation.revalidation_request_due()
    assert report.broker_unavailable and report.requested == []
    # The first request ended failed (the 503 path); the sweep stopped before the second.
    failed = RiskAssessment.objects.get()
    assert failed.status == "failed" and failed.error["code"] == "broker_unavailable"


def test_stale_runs_are_ended_failed_and_recent_ones_are_left(assessable, owner, settings):
    settings.CELERY_TASK_TIME_LIMIT = 600
    settings.CELERY_BROKER_VISIBILITY_TIMEOUT = 1200
    assert revalidation.stale_after() == dt.timedelta(seconds=1260)
    job = SystemActor("tests")
    stale, _ = assessment_services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    stale, _ = assessment_services.assessment_start(actor=job, assessment=stale, task_id="t1")
    fresh, _ = assessment_services.assessment_request(
        actor=owner, version=assessable(model={"name": "nvda-other"}), parameters=FAST
    )
    fresh, _ = assessment_services.assessment_start(actor=job, assessment=fresh, task_id="t2")
    force_fields(stale, started_at=timezone.now() - dt.timedelta(seconds=1300))
    force_fields(fresh, started_at=timezone.now() - dt.timedelta(seconds=1200))

    assert revalidation.assessment_end_stale() == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "failed" and stale.error["code"] == "stale"
    assert "no worker left to finish it" in stale.error["message"]
    assert stale.error["detail"]["attempts"] == 1
    assert fresh.status == "running"
    event = Event.objects.filter(action="risk_assessment.failed", object_id=str(stale.pk)).get()
    assert event.actor_label == "system:revalidation"
    # A run restarted by a redelivery meanwhile is not touched (checked under the row lock).
    assert revalidation.assessment_end_stale(now=timezone.now() - dt.timedelta(hours=1)) == []


def test_the_beat_job_sweeps_then_requests(approved, django_capture_on_commit_callbacks, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["risk-revalidation"]
    assert entry == {"task": "models_registry.revalidate_due", "schedule": 86400.0}
    assert revalidate_due.name == entry["task"]
    version = approved()
    with django_capture_on_commit_callbacks(execute=False):
        result = revalidate_due.apply().get()
    new = RiskAssessment.objects.get(version=version)
    assert result == {
        "stale": [],
        "requested": [new.pk],
        "in_progress": [],
        "unchanged": [],
        "skipped": {},
        "broker_unavailable": False,
    }
