"""Periodic jobs of the audit log (scheduled by Celery beat: CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from audit.context import audit_context
from audit.services import SystemActor, checkpoint_if_grown


@shared_task(bind=True, acks_late=True, name="audit.make_checkpoint")
def make_checkpoint(self: Any) -> int | None:
    """Sign the tree head if the log grew; returns the signed tree size, or None if idle."""
    with audit_context(request_id=self.request.id):
        checkpoint = checkpoint_if_grown(actor=SystemActor("celery-beat"))
    return checkpoint.tree_size if checkpoint else None
