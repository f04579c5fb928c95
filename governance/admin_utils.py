"""Shared admin plumbing: admin forms validate, services write, errors come back as messages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from governance.errors import DomainError


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(
                f"{field}: {' '.join(m for e in errs for m in e.messages)}" for field, errs in exc.error_dict.items()
            )
        return " ".join(exc.messages)
    return str(exc)


class ServiceBackedAdmin(admin.ModelAdmin):
    """Admin whose saves call services. A refusal rolls back and returns to the form with the reason."""

    @csrf_protect_m
    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        # Not inside the admin's usual request-wide transaction: each service is its own
        # transaction, and a refusal's audit event (segregation of duties) must outlive the
        # refused change instead of being rolled back with it.
        try:
            return self._changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Nothing was saved: {error_text(exc)}", level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    # Form fields shown only when adding (file uploads that define the object).
    add_only_fields: tuple[str, ...] = ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        if obj is not None:
            fields = [f for f in fields if f not in self.add_only_fields]
        return fields

    def delete_model(self, request: HttpRequest, obj: Any) -> None:  # pragma: no cover - deletion is disabled
        raise DomainError("governed objects are retired, not deleted")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def changed_values(form: Any) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}


def adopt(obj: Any, created: Any) -> None:
    """Make the admin's unsaved ``obj`` the row a service created (admin logs and redirects with it)."""
    for field in created._meta.concrete_fields:
        setattr(obj, field.attname, getattr(created, field.attname))
    obj._state.adding = False
    obj._state.db = created._state.db
