"""Requests, idempotency, the job's transitions, cancellation, scope and the broker's absence."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from kombu.exceptions import OperationalError as BrokerDown

from audit.models import Event
from audit.services import SystemActor
from governance.errors import Conflict, NotPermitted, ServiceUnavailable
from governance.roles import Role
from models_registry import assessment_services, services
from models_registry.models import RiskAssessment
from tests.assessments.conftest import FAST
from tests.conftest import celery_conf
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def actions(assessment) -> list[str]:
    return list(
        Event.objects.filter(object_type="models_registry.riskassessment", object_id=str(assessment.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_the_same_inputs_give_the_same_assessment(assessable, owner, validator_on):
    version = assessable()
    first, created = services.assessment_request(actor=owner, version=version, parameters=FAST)
    assert created and first.status == "queued" and first.requested_by == owner
    again, created_again = services.assessment_request(
        actor=validator_on(version.model), version=version, parameters=FAST
    )
    assert not created_again and again.pk == first.pk
    # Defaults filled in are the same inputs as the defaults left out.
    explicit, created = services.assessment_request(actor=owner, version=version, parameters={**FAST, "cost_bps": 5})
    assert not created and explicit.pk == first.pk
    other, created = services.assessment_request(actor=owner, version=version, parameters={**FAST, "cost_bps": 10})
    assert created and other.pk != first.pk
    assert actions(first) == ["risk_assessment.requested"]
    assert first.parameters["long_only"] is False  # an alpha model may go short by default


def test_a_failed_assessment_can_be_requested_again(assessable, owner):
    version = assessable()
    first, _ = services.assessment_request(actor=owner, version=version, parameters=FAST)
    assessment_services.assessment_fail(actor=SystemActor("tests"), assessment=first, code="x", message="x")
    second, created = services.assessment_request(actor=owner, version=version, parameters=FAST)
    assert created and second.pk != first.pk


def test_start_is_exactly_once_and_restarts_after_a_lost_worker(assessable, owner, settings):
    settings.GOVERNANCE_ASSESSMENT_MAX_ATTEMPTS = 2
    assessment, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    job = SystemActor("tests")
    started, run = assessment_services.assessment_start(actor=job, assessment=assessment, task_id="t1")
    assert run and started.status == "running" and started.attempts == 1 and started.celery_task_id == "t1"
    # Redelivered after the worker died: a clean restart.
    restarted, run = assessment_services.assessment_start(actor=job, assessment=assessment, task_id="t1")
    assert run and restarted.attempts == 2 and restarted.progress_percent == 0
    # Beyond the limit it ends failed rather than loop forever.
    ended, run = assessment_services.assessment_start(actor=job, assessment=assessment, task_id="t1")
    assert not run and ended.status == "failed" and ended.error["code"] == "too_many_attempts"
    # A finished assessment is never started again.
    again, run = assessment_services.assessment_start(actor=job, assessment=assessment, task_id="t2")
    assert not run and again.status == "failed"
    assert actions(assessment).count("risk_assessment.started") == 2


def test_a_succeeded_assessment_is_not_run_twice(assessable, owner, run_now):
    assessment, _ = run_now(actor=owner, version=assessable(), kind="performance")
    assert assessment.status == "succeeded"
    again = assessment_services.assessment_execute(assessment_id=assessment.pk, task_id="dup")
    assert again.status == "succeeded" and again.attempts == 1
    assert actions(assessment).count("risk_assessment.succeeded") == 1


def test_cancelling_a_queued_assessment_ends_it_at_once(assessable, owner):
    assessment, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    cancelled = services.assessment_cancel(actor=owner, assessment=assessment, reason="not needed")
    assert cancelled.status == "cancelled" and cancelled.metrics is None
    # The job, if its message still arrives, does nothing.
    assert assessment_services.assessment_execute(assessment_id=assessment.pk).status == "cancelled"
    with pytest.raises(Conflict):
        services.assessment_cancel(actor=owner, assessment=assessment)
    assert actions(assessment) == ["risk_assessment.requested", "risk_assessment.cancelled"]


def test_a_running_assessment_stops_at_its_next_step(assessable, owner, monkeypatch):
    assessment, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    original = assessment_services.pipeline.run

    def run(inputs, progress):
        def report(percent: int, step: str) -> None:
            if step == "checking inputs":
                services.assessment_cancel(actor=owner, assessment=assessment, reason="wrong data")
            progress(percent, step)

        return original(inputs, report)

    monkeypatch.setattr(assessment_services.pipeline, "run", run)
    ended = assessment_services.assessment_execute(assessment_id=assessment.pk)
    assert ended.status == "cancelled" and ended.metrics is None and ended.cancel_requested
    assert actions(assessment)[-2:] == ["risk_assessment.cancel_requested", "risk_assessment.cancelled"]


def test_progress_is_recorded_per_step(assessable, owner, run_now):
    assessment, _ = run_now(actor=owner, version=assessable(), kind="performance")
    steps = Event.objects.filter(action="risk_assessment.progressed", object_id=str(assessment.pk))
    assert [e.after["current_step"] for e in steps.order_by("seq")] == [
        "loading inputs",
        "checking inputs",
        "performance on the test set",
    ]


def test_people_out_of_scope_or_without_the_permission_are_refused(assessable, owner, outsider, validator):
    version = assessable()
    developer = UserFactory(username="dev", roles=[Role.MODEL_DEVELOPER])
    regulator = UserFactory(username="reg", roles=[Role.REGULATOR])
    for user in (outsider, developer, regulator, validator):  # validator: not assigned to this model
        with pytest.raises(NotPermitted):
            services.assessment_request(actor=user, version=version)
    assert not RiskAssessment.objects.exists()
    assessment, _ = services.assessment_request(actor=owner, version=version, parameters=FAST)
    with pytest.raises(NotPermitted):
        services.assessment_cancel(actor=outsider, assessment=assessment)


def test_an_assigned_validator_and_a_risk_manager_may_request(assessable, validator_on):
    version = assessable()
    validator = validator_on(version.model)
    assert services.assessment_request(actor=validator, version=version, kind="performance")[1]
    risk = UserFactory(username="rhea", roles=[Role.RISK_MANAGER])
    assert services.assessment_request(actor=risk, version=version, kind="backtest")[1]


def test_an_unreachable_broker_fails_the_assessment_and_answers_503(
    assessable, owner, monkeypatch, django_capture_on_commit_callbacks
):

    from models_registry.tasks import run_risk_assessment

    def refuse(*args, **kwargs):
        raise BrokerDown("[Errno 111] Connection refused")

    monkeypatch.setattr(run_risk_assessment, "apply_async", refuse)
    version = assessable()
    with (
        celery_conf(task_always_eager=False),
        pytest.raises(ServiceUnavailable) as caught,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.assessment_request(actor=owner, version=version, parameters=FAST)
    assert caught.value.status == 503
    assessment = RiskAssessment.objects.get()
    assert assessment.status == "failed" and assessment.error["code"] == "broker_unavailable"
    # Nothing half-created stays queued, and asking again is a fresh attempt.
    assert not RiskAssessment.objects.filter(status="queued").exists()


def test_the_findings_and_the_results_are_one_transaction(assessable, owner, monkeypatch):
    """A failure while storing a finding leaves neither the results nor any finding."""
    import governance.services as governance_services

    assessment, _ = services.assessment_request(
        actor=owner, version=assessable(), kind="overfitting", parameters={**FAST, "gap_threshold": 0.0}
    )

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(governance_services, "_finding_raise_by_assessment", broken)
    ended = assessment_services.assessment_execute(assessment_id=assessment.pk)
    assert ended.status == "failed" and ended.error["code"] == "internal_error" and ended.metrics is None
    assert not ended.findings.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_create_one_assessment(assessable, owner):
    version = assessable()
    results: list = []
    barrier = threading.Barrier(2)

    def request() -> None:
        try:
            barrier.wait()
            results.append(services.assessment_request(actor=owner, version=version, parameters=FAST))
        finally:
            connection.close()

    from django.test.utils import override_settings

    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        threads = [threading.Thread(target=request) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 2 and {a.pk for a, _ in results} == {RiskAssessment.objects.get().pk}
    assert sorted(created for _, created in results) == [False, True]
