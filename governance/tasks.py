"""Periodic jobs of the governance app (scheduled by Celery beat: CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from audit.context import audit_context
from audit.services import SystemActor
from governance import services


@shared_task(bind=True, acks_late=True, name="governance.expire_signoffs")
def expire_signoffs(self: Any) -> list[int]:
    """Close sign-off requests left undecided past their expiry; returns their ids."""
    with audit_context(request_id=self.request.id):
        return services.signoff_expire_due(actor=SystemActor("celery-beat"))


@shared_task(bind=True, acks_late=True, name="governance.evaluate_monitoring")
def evaluate_monitoring(self: Any) -> dict[int, list[int]]:
    """The anomaly rules over every live deployment; ``{deployment id: [alert ids raised]}``."""
    from governance import anomaly_services

    with audit_context(request_id=self.request.id):
        return anomaly_services.monitoring_evaluate_live(actor=anomaly_services.MONITORING)


@shared_task(bind=True, acks_late=True, name="governance.evaluate_deployment_monitoring")
def evaluate_deployment_monitoring(self: Any, deployment_id: int) -> list[int]:
    """The anomaly rules on one deployment after a batch of its samples was ingested; the ids of
    the alerts raised. A deployment no longer live (rolled back meanwhile) is skipped."""
    from governance import anomaly_services
    from governance.models import Deployment

    deployment = Deployment.objects.filter(pk=deployment_id, status__in=Deployment.LIVE_STATUSES).first()
    if deployment is None:
        return []
    with audit_context(request_id=self.request.id):
        alerts = anomaly_services.monitoring_evaluate(actor=anomaly_services.MONITORING, deployment=deployment)
    return [alert.pk for alert in alerts]


@shared_task(bind=True, acks_late=True, name="governance.generate_report")
def generate_report(self: Any, report_id: int) -> str:
    """Generate and issue one report (governance.report_services.report_generate); returns its status."""
    from governance import report_services

    with audit_context(request_id=self.request.id):
        return report_services.report_generate(report_id=report_id).status
