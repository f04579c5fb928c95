"""Celery tasks of the inventory: take primary keys, load the row, call one service."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.contrib.auth import get_user_model

from audit.context import audit_context
from audit.services import SystemActor
from models_registry import services
from models_registry.models import Dataset


@shared_task(bind=True, acks_late=True, name="models_registry.validate_dataset")
def validate_dataset(self: Any, dataset_id: int, actor_id: int | None = None) -> str:
    """Run a dataset's rules in a worker; returns the resulting validation status."""
    actor = get_user_model().objects.get(pk=actor_id) if actor_id else SystemActor("celery")
    with audit_context(request_id=self.request.id):
        dataset = services.dataset_validate(actor=actor, dataset=Dataset.objects.get(pk=dataset_id))
    return dataset.validation_status
