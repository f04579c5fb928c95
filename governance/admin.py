from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken

from governance import (  # noqa: F401 - register their admin pages
    admin_access_review,
    admin_alerts,
    admin_deployments,
    admin_monitoring,
    admin_reports,
    admin_signoffs,
    services,
)
from governance.admin_utils import ServiceBackedAdmin, adopt, changed_values, error_text
from governance.authentication import cool_off
from governance.errors import DomainError
from governance.models import Desk, Membership


@admin.register(Desk)
class DeskAdmin(ServiceBackedAdmin):
    list_display = ["name", "code"]
    search_fields = ["name", "code"]

    def save_model(self, request: HttpRequest, obj: Desk, form: forms.ModelForm, change: bool) -> None:
        if change:
            services.desk_update(actor=request.user, desk=obj, changes=changed_values(form))
            return
        adopt(obj, services.desk_create(actor=request.user, **form.cleaned_data))


@admin.register(Membership)
class MembershipAdmin(ServiceBackedAdmin):
    list_display = ["user", "desk"]
    list_filter = ["desk"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user", "desk")

    def save_model(self, request: HttpRequest, obj: Membership, form: forms.ModelForm, change: bool) -> None:
        adopt(
            obj,
            services.membership_set(actor=request.user, user=form.cleaned_data["user"], desk=form.cleaned_data["desk"]),
        )


# --- Authentication: API tokens and login lock-outs ------------------------------------------
# knox registers an admin that creates and deletes tokens without an audit event, and shows
# digests; django-axes' own admin is switched off (AXES_ENABLE_ADMIN). These replace them:
# read-only lists whose only action calls an audited service.


def _manages_users(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and (user.is_superuser or user.has_perm("auth.change_user")))


class _AuditedActionAdmin(admin.ModelAdmin):
    """Read-only for administrators; rows change only through the admin action's service."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _manages_users(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _manages_users(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _run(self, request: HttpRequest, call: Callable[[], int], done: str) -> None:
        try:
            count = call()
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Nothing was changed: {error_text(exc)}", level=messages.ERROR)
            return
        self.message_user(request, done.format(count=count), level=messages.SUCCESS)


if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class AuthTokenAdmin(_AuditedActionAdmin):
    list_display = ["token_key", "user", "created", "expiry"]
    list_select_related = ["user"]
    search_fields = ["token_key", "user__username"]
    list_filter = ["expiry"]
    ordering = ["-created"]
    fields = ["token_key", "user", "created", "expiry"]
    actions = ["revoke_tokens"]

    @admin.action(description="Revoke selected API tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(
            request,
            lambda: services.token_revoke(actor=request.user, tokens=queryset, reason="revoked in the admin"),
            "{count} API token(s) revoked.",
        )


@admin.register(AccessAttempt)
class AccessAttemptAdmin(_AuditedActionAdmin):
    list_display = ["username", "ip_address", "failures_since_start", "attempt_time", "locked_out"]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    fields = ["username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time"]
    actions = ["clear_lockouts"]

    @admin.display(boolean=True, description="Locked out")
    def locked_out(self, obj: AccessAttempt) -> bool:
        # Per row (one username, address and user agent); the lock-out itself sums the rows.
        period = cool_off()
        current = period is None or obj.attempt_time > timezone.now() - period
        return current and obj.failures_since_start >= settings.AXES_FAILURE_LIMIT

    @admin.action(description="Clear selected failed logins (lifts their lock-out)")
    def clear_lockouts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(
            request,
            lambda: services.login_lockout_clear(actor=request.user, attempts=queryset, reason="cleared in the admin"),
            "{count} record(s) of failed logins cleared.",
        )
