from __future__ import annotations

from django.apps import AppConfig


class BenchappConfig(AppConfig):
    name = "benchmarks.benchapp"
    label = "benchapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered here rather than with the decorator so that the model stays a plain
        # copy of the others; auditlog records only the models in its registry.
        from auditlog.registry import auditlog

        from benchmarks.benchapp.models import AuditlogItem

        auditlog.register(AuditlogItem)
