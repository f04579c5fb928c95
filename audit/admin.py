from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only view of the audit log."""

    list_display = ["seq", "timestamp", "actor_label", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type", "actor_label"]
    search_fields = ["object_id", "object_repr", "actor_label", "reason", "request_id"]
    date_hierarchy = "timestamp"
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
