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
