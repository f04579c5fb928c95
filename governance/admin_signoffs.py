"""Admin pages of the sign-off workflow, findings and policy decisions (thin: services write,
selectors scope)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from governance import selectors
from governance.models import SignOffRequest


@admin.register(SignOffRequest)
class SignOffRequestAdmin(admin.ModelAdmin):
    list_display = ["pk", "model", "version", "transition", "status", "requested_by", "submitted_at", "due_at"]
    list_filter = ["status", "to_status"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.signoff_request_list(user=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
