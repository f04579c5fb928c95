"""Admin pages of deployments: a scoped, read-only list and change page showing the model's
trading permission now, with the kill switch and rollback as buttons.

Thin, like the sign-off pages: the selector says what each user sees; the buttons post to the
change page, which calls the services as ``request.user`` outside the admin's request-wide
transaction (each service commits on its own, and the cached trading permission is forgotten
when it does); a refusal comes back as a message having changed nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from governance import selectors, services
from governance.admin_signoffs import _NONE, _admin_link, _audit_link, _ScopedReadAdmin, _table
from governance.admin_utils import ServiceBackedAdmin, error_text
from governance.errors import DomainError
from governance.models import Deployment


class DeploymentActionForm(forms.Form):
    """A button on the change page and the reason it needs."""

    ENGAGE, LIFT, ROLLBACK = "engage", "lift", "rollback"
    DONE = {ENGAGE: "kill switch pulled", LIFT: "kill switch lifted", ROLLBACK: "rolled back"}

    _deployment = forms.ChoiceField(choices=[(a, a) for a in DONE])
    deployment_reason = forms.CharField(error_messages={"required": "a reason is required"}, strip=True)
    deployment_drill = forms.BooleanField(required=False)


def _is_live(obj: Deployment) -> bool:
    return obj.status in Deployment.LIVE_STATUSES


_FIELDS = [
    "model",
    "version_link",
    "status",
    "phase",
    "phase_started_at",
    "capital",
    "instruments_display",
    "max_daily_loss",
    "permission_display",
    "rollback_target_link",
    "rollback_plan",
    "signoff_link",
    "kill_switch_engaged",
    "kill_reason",
    "kill_drill",
    "killed_at",
    "killed_by_label",
    "started_at",
    "ended_at",
    "audit_link",
]


@admin.register(Deployment)
class DeploymentAdmin(ServiceBackedAdmin, _ScopedReadAdmin):
    change_form_template = "admin/governance/deployment/change_form.html"
    list_display = [
        "pk",
        "model",
        "version",
        "phase",
        "status",
        "kill_switch_engaged",
        "capital",
        "instruments_display",
        "started_at",
    ]
    list_display_links = ["pk", "model"]
    list_filter = ["status", "phase", "kill_switch_engaged"]
    search_fields = ["model__name", "version__version"]
    fieldsets = [
        (None, {"fields": _FIELDS[:8]}),
        ("Trading permission (the model's, now)", {"fields": ["permission_display"]}),
        ("Rollback", {"fields": _FIELDS[9:12]}),
        ("Kill switch", {"fields": _FIELDS[12:16]}),
        ("Dates", {"fields": _FIELDS[16:]}),
    ]
    readonly_fields = _FIELDS

    def scope(self, request: HttpRequest) -> QuerySet:
        return selectors.deployment_list(user=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Deployments are opened by sign-offs (docs/deployments.md).
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing is edited: a deployment changes only through the buttons (services).
        return False

    # --- The buttons ----------------------------------------------------------------------

    @csrf_protect_m
    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if object_id is not None and request.method == "POST" and "_deployment" in request.POST:
            return self._deployment_action(request, object_id)
        if object_id is not None:
            extra_context = {**(extra_context or {}), **self._buttons(request, object_id)}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _buttons(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        """Which buttons to offer (a hint only: the services decide, and say why not)."""
        obj = self.get_object(request, object_id)
        if obj is None or not _is_live(obj):
            return {}
        user = request.user
        return {
            "deployment_engages": not obj.kill_switch_engaged and user.has_perm("governance.engage_killswitch"),
            "deployment_lifts": obj.kill_switch_engaged and user.has_perm("governance.lift_killswitch"),
            "deployment_rollback_target": (
                obj.rollback_target if user.has_perm("governance.rollback_deployment") else None
            ),
        }

    def _deployment_action(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        here = HttpResponseRedirect(request.get_full_path())
        form = DeploymentActionForm(request.POST)
        if not form.is_valid():
            problems = "; ".join(" ".join(errors) for errors in form.errors.values())
            self.message_user(request, f"Nothing was changed: {problems}", level=messages.ERROR)
            return here
        action, reason = form.cleaned_data["_deployment"], form.cleaned_data["deployment_reason"]
        # The kill switch stops the model whatever page it was pulled from; lifting and rolling
        # back act on what the page shows, so only from the live deployment's page.
        if action != DeploymentActionForm.ENGAGE and not _is_live(obj):
            self.message_user(
                request,
                f"Nothing was changed: deployment {obj.pk} is {obj.get_status_display().lower()}, not live.",
                level=messages.ERROR,
            )
            return here
        call = {
            DeploymentActionForm.ENGAGE: services.kill_switch_engage,
            DeploymentActionForm.LIFT: services.kill_switch_lift,
            DeploymentActionForm.ROLLBACK: services.deployment_rollback,
        }[action]
        extra = {"drill": form.cleaned_data["deployment_drill"]} if action == DeploymentActionForm.ENGAGE else {}
        try:
            result = call(actor=request.user, model=obj.model, reason=reason, **extra)
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Nothing was changed: {error_text(exc)}", level=messages.ERROR)
            return here
        selectors.forget_trading_permission(obj.model_id)  # as the API does: the state after the action
        permission = selectors.trading_permission(model_id=obj.model_id)
        self.message_user(
            request,
            f"{obj.model}: {DeploymentActionForm.DONE[action]} (deployment {result.pk}, version "
            f"{result.version.version}, {result.get_status_display().lower()}). Trading permission: "
            f"{'allowed' if permission['allowed'] else 'not allowed'} ({permission['reason']}).",
            level=messages.SUCCESS,
        )
        if result.pk != obj.pk:  # a rollback opens the target's deployment: show that one
            return HttpResponseRedirect(reverse("admin:governance_deployment_change", args=[result.pk]))
        return here

    # --- Columns and read-only fields -----------------------------------------------------

    @admin.display(description="capital limit", ordering="capital_limit")
    def capital(self, obj: Deployment) -> str:
        return f"{obj.capital_limit:,} {obj.currency}"

    @admin.display(description="instruments")
    def instruments_display(self, obj: Deployment) -> str:
        return ", ".join(obj.instruments) or "—"

    @admin.display(description="version")
    def version_link(self, obj: Deployment) -> Any:
        return _admin_link(obj.version)

    @admin.display(description="rollback target")
    def rollback_target_link(self, obj: Deployment) -> Any:
        if obj.rollback_target is None:
            return format_html("<em>{}</em>", "none: the rollback plan says what to do")
        return _admin_link(obj.rollback_target, f"{obj.rollback_target} ({obj.rollback_target.status})")

    @admin.display(description="sign-off request")
    def signoff_link(self, obj: Deployment) -> Any:
        return _admin_link(obj.signoff, f"sign-off request {obj.signoff_id}") if obj.signoff_id else _NONE

    @admin.display(description="trading permission")
    def permission_display(self, obj: Deployment) -> Any:
        p = selectors.trading_permission(model_id=obj.model_id)
        return _table(
            ["allowed", "version", "phase", "capital limit", "instruments", "reason"],
            [
                (
                    "yes" if p["allowed"] else "no",
                    p["version"] or "—",
                    p["phase"] or "—",
                    f"{p['capital_limit']} {p['currency']}" if p["capital_limit"] else "—",
                    ", ".join(p["instruments"]) or "—",
                    p["reason"],
                )
            ],
        )

    @admin.display(description="audit")
    def audit_link(self, obj: Deployment) -> Any:
        return _audit_link(obj)
