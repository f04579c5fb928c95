"""Admin page of monitoring batches: a scoped, read-only list of what the trading
infrastructure reported (docs/monitoring.md). Batches are written only by the ingest service;
nothing is added, changed or deleted here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from governance import selectors
from governance.admin_signoffs import _admin_link, _audit_link, _ScopedReadAdmin
from governance.models import MonitoringBatch

_FIELDS = [
    "batch_id",
    "model",
    "deployment_link",
    "version",
    "sample_count",
    "first_at",
    "last_at",
    "trade_count_total",
    "pnl_display",
    "content_sha256",
    "received_at",
    "received_by_label",
    "audit_link",
]


@admin.register(MonitoringBatch)
class MonitoringBatchAdmin(_ScopedReadAdmin):
    list_display = [
        "batch_id",
        "model",
        "deployment_link",
        "received_at",
        "sample_count",
        "first_at",
        "last_at",
        "trade_count_total",
        "pnl_display",
    ]
    list_filter = ["received_at", "deployment__status"]
    search_fields = ["batch_id", "model__name"]
    date_hierarchy = "received_at"
    fields = _FIELDS
    readonly_fields = _FIELDS
    list_select_related = ["model", "deployment", "version"]

    def scope(self, request: HttpRequest) -> QuerySet:
        return selectors.monitoring_batch_list(user=request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Monitoring data is seen by whoever sees the model's deployments (the selector's rule).
        if not request.user.has_perm("governance.view_deployment"):
            return False
        return obj is None or self.scope(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only the ingest service writes batches

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="deployment", ordering="deployment")
    def deployment_link(self, obj: MonitoringBatch) -> Any:
        return _admin_link(obj.deployment, f"{obj.deployment.pk} ({obj.deployment.get_status_display().lower()})")

    @admin.display(description="P&L total", ordering="pnl_total")
    def pnl_display(self, obj: MonitoringBatch) -> str:
        return f"{obj.pnl_total:,.2f} {obj.deployment.currency}"

    @admin.display(description="audit")
    def audit_link(self, obj: MonitoringBatch) -> Any:
        return _audit_link(obj)
