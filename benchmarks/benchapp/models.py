"""Identical copies of a governed model, one per way of recording its history.

The fields mirror ``models_registry.Model`` (text, choices-like codes, a decimal amount,
two foreign keys, timestamps) so that snapshots, diffs and history rows are the size the
product writes. ``BenchDesk`` stands in for ``governance.Desk``, which is governed
itself and may only be written by its service.

With ``BENCH_SERVICE_HISTORY`` set (by ``benchmarks/audit_write_service.py`` only), the
libraries' history models of the product's own ``models_registry.Model`` are added too:
see ``service_history.py``.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class BenchDesk(models.Model):
    code = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.code


class Item(models.Model):
    name = models.CharField(max_length=200, unique=True)
    purpose = models.CharField(max_length=20)
    desk = models.ForeignKey(BenchDesk, on_delete=models.PROTECT, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    description = models.TextField(blank=True)
    objectives = models.TextField(blank=True)
    success_criteria = models.TextField(blank=True)
    constraints = models.TextField(blank=True)
    model_type = models.CharField(max_length=30)
    materiality = models.DecimalField(max_digits=20, decimal_places=2)
    risk_tier = models.PositiveSmallIntegerField()
    risk_tier_override = models.PositiveSmallIntegerField(null=True, blank=True)
    risk_tier_override_justification = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class PlainItem(Item):
    """Written with no history at all: the baseline."""


class OurItem(Item):
    """Written with ``audit.services.record_event`` in the same transaction."""


class AuditlogItem(Item):
    """Tracked by django-auditlog (registered in ``apps.py``)."""


class SimpleHistoryItem(Item):
    """Tracked by django-simple-history."""

    history = HistoricalRecords()


if settings.BENCH_POSTGRES:
    import pghistory

    @pghistory.track()
    class PghistoryItem(Item):
        """Tracked by django-pghistory's triggers (insert and update events)."""


if os.environ.get("BENCH_SERVICE_HISTORY"):
    # Set only by benchmarks/audit_write_service.py: the libraries' history models of the
    # product's own Model, for its library variants. Imported here so that they are models of
    # this app, made while the app registry loads; without the variable nothing changes.
    from benchmarks.benchapp import service_history  # noqa: F401
