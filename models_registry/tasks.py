"""Celery tasks of the inventory: take primary keys, load the row, call one service."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError

from audit.context import audit_context
from audit.services import SystemActor
from models_registry import assessment_services, services
from models_registry.models import Dataset, RiskAssessment

# Errors worth a retry: the database or the network hiccuped. Bad input never is (the job
# ends failed with its cause instead), so it is not listed.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


@shared_task(bind=True, acks_late=True, name="models_registry.validate_dataset")
def validate_dataset(self: Any, dataset_id: int, actor_id: int | None = None) -> str:
    """Run a dataset's rules in a worker; returns the resulting validation status."""
    actor = get_user_model().objects.get(pk=actor_id) if actor_id else SystemActor("celery")
    with audit_context(request_id=self.request.id):
        dataset = services.dataset_validate(actor=actor, dataset=Dataset.objects.get(pk=dataset_id))
    return dataset.validation_status


class AssessmentTask(Task):
    """Ends the assessment failed when the task itself gives up (retries exhausted), so no
    assessment stays running after its last attempt."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        assessment_id = (args or [None])[0] or (kwargs or {}).get("assessment_id")
        if assessment_id is None:
            return
        try:
            assessment_services.assessment_fail(
                actor=assessment_services.JOB,
                assessment=RiskAssessment.objects.get(pk=assessment_id),
                code="job_error",
                message=f"the job gave up after {self.request.retries} retries: {type(exc).__name__}: {exc}",
            )
        except Exception:  # the database may be what is failing; the row then stays for a sweep
            return


@shared_task(
    bind=True,
    base=AssessmentTask,
    name="models_registry.run_risk_assessment",
    # Acknowledged only when done, and redelivered if the worker dies mid-run: the service
    # restarts a run found "running" cleanly, and does nothing for one already finished.
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def run_risk_assessment(self: Any, assessment_id: int) -> str:
    """Run one risk assessment (``assessment_services.assessment_execute``); returns its final status."""
    with audit_context(request_id=self.request.id):
        assessment = assessment_services.assessment_execute(assessment_id=assessment_id, task_id=self.request.id or "")
    return assessment.status


@shared_task(bind=True, acks_late=True, name="models_registry.revalidate_due")
def revalidate_due(self: Any) -> dict[str, Any]:
    """Celery beat, daily by default: end stale runs, then request the revalidations due by tier
    (``models_registry.revalidation``); returns what was done."""
    from models_registry import revalidation

    with audit_context(request_id=self.request.id):
        stale = revalidation.assessment_end_stale()
        report = revalidation.revalidation_request_due()
    return {"stale": stale, **report.as_dict()}
