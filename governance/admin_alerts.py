"""Admin pages of monitoring alerts (anomaly rules that fired): a scoped, read-only list with
open alerts first, and a change page with Acknowledge and Resolve buttons.

Thin: the selector says what each user sees; the buttons (and the list action) call the
services as ``request.user``, each its own transaction; a refusal comes back as a message having
changed nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import format_html

from governance import anomaly_services, selectors
from governance.admin_signoffs import _NONE, _admin_link, _audit_link, _ScopedReadAdmin, _table
from governance.admin_utils import error_text
from governance.errors import DomainError
from governance.models import MonitoringAlert


class AlertActionForm(forms.Form):
    """A button on the change page and its text (a comment, or the resolution)."""

    ACKNOWLEDGE, RESOLVE = "acknowledge", "resolve"
    DONE = {ACKNOWLEDGE: "acknowledged", RESOLVE: "resolved"}

    _alert = forms.ChoiceField(choices=[(a, a) for a in DONE])
    alert_text = forms.CharField(required=False, strip=True)
    alert_false_alarm = forms.BooleanField(required=False)


_FIELDS = [
    "rule_id",
    "severity",
    "status",
    "model",
    "version_link",
    "deployment_link",
    "message",
    "raised_at",
    "window_from",
    "window_to",
    "actions_display",
    "detection_display",
    "decision_link",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "resolution",
    "false_alarm",
    "audit_link",
]


@admin.register(MonitoringAlert)
class MonitoringAlertAdmin(_ScopedReadAdmin):
    change_form_template = "admin/governance/monitoringalert/change_form.html"
    list_display = ["pk", "status", "severity", "rule_id", "model", "version", "raised_at", "actions_short"]
    list_display_links = ["pk", "rule_id"]
    list_filter = ["status", "severity", "rule_id", "deployment__phase"]
    search_fields = ["model__name", "version__version", "rule_id", "message"]
    date_hierarchy = "raised_at"
    actions = ["acknowledge_selected"]
    fieldsets = [
        (None, {"fields": _FIELDS[:10]}),
        ("What fired and what was done", {"fields": _FIELDS[10:13]}),
        ("Handling", {"fields": _FIELDS[13:]}),
    ]
    readonly_fields = _FIELDS

    def scope(self, request: HttpRequest) -> QuerySet:
        # Open alerts first, then acknowledged, then resolved (the selector's order).
        return selectors.monitoring_alert_list(user=request.user)

    def get_ordering(self, request: HttpRequest) -> list[str]:
        return ["status_rank", "-raised_at", "-pk"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts are raised by the anomaly rules only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # changed only through the buttons (services)

    # --- Buttons and the list action --------------------------------------------------------

    @admin.action(description="Acknowledge the selected open alerts")
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, refused = [], []
        for alert in queryset.filter(status=MonitoringAlert.Status.OPEN):
            try:
                anomaly_services.monitoring_alert_acknowledge(actor=request.user, alert=alert)
                done.append(str(alert.pk))
            except (DomainError, ValidationError) as exc:
                refused.append(f"{alert.pk}: {error_text(exc)}")
        if done:
            self.message_user(request, f"Acknowledged: {', '.join(done)}.", level=messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not acknowledged: {'; '.join(refused)}", level=messages.ERROR)
        if not done and not refused:
            self.message_user(request, "No open alert was selected.", level=messages.WARNING)

    @csrf_protect_m
    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if object_id is not None and request.method == "POST" and "_alert" in request.POST:
            return self._alert_action(request, object_id)
        if object_id is not None:
            obj = self.get_object(request, object_id)
            if obj is not None and obj.status != MonitoringAlert.Status.RESOLVED:
                user = request.user
                extra_context = {
                    **(extra_context or {}),
                    "alert_acknowledges": obj.status == MonitoringAlert.Status.OPEN
                    and user.has_perm("governance.acknowledge_monitoringalert"),
                    "alert_resolves": user.has_perm("governance.resolve_monitoringalert"),
                }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _alert_action(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        here = HttpResponseRedirect(request.get_full_path())
        form = AlertActionForm(request.POST)
        if not form.is_valid():
            problems = "; ".join(" ".join(errors) for errors in form.errors.values())
            self.message_user(request, f"Nothing was changed: {problems}", level=messages.ERROR)
            return here
        action, text = form.cleaned_data["_alert"], form.cleaned_data["alert_text"]
        try:
            if action == AlertActionForm.ACKNOWLEDGE:
                anomaly_services.monitoring_alert_acknowledge(actor=request.user, alert=obj, comment=text)
            else:
                anomaly_services.monitoring_alert_resolve(
                    actor=request.user, alert=obj, resolution=text, false_alarm=form.cleaned_data["alert_false_alarm"]
                )
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Nothing was changed: {error_text(exc)}", level=messages.ERROR)
            return here
        self.message_user(request, f"Alert {obj.pk} {AlertActionForm.DONE[action]}.", level=messages.SUCCESS)
        return here

    # --- Columns and read-only fields ----------------------------------------------------------

    @admin.display(description="actions")
    def actions_short(self, obj: MonitoringAlert) -> str:
        return ", ".join(obj.actions)

    @admin.display(description="version")
    def version_link(self, obj: MonitoringAlert) -> Any:
        return _admin_link(obj.version)

    @admin.display(description="deployment")
    def deployment_link(self, obj: MonitoringAlert) -> Any:
        return _admin_link(obj.deployment, f"deployment {obj.deployment_id} ({obj.deployment.phase})")

    @admin.display(description="policy decision")
    def decision_link(self, obj: MonitoringAlert) -> Any:
        return _admin_link(obj.policy_decision, f"decision {obj.policy_decision_id}")

    @admin.display(description="actions taken")
    def actions_display(self, obj: MonitoringAlert) -> Any:
        if not obj.action_results:
            return _NONE
        return _table(
            ["action", "outcome", "detail"],
            [(item.get("action"), item.get("status"), item.get("detail", "")) for item in obj.action_results],
        )

    @admin.display(description="detection")
    def detection_display(self, obj: MonitoringAlert) -> Any:
        detections = (obj.detection or {}).get("detections") or {}
        if not detections:
            return _NONE
        return _table(
            ["detector", "breached", "statistic", "threshold", "first alarm", "samples", "window"],
            [
                (
                    name,
                    "yes" if item.get("breached") else "no",
                    item.get("statistic"),
                    item.get("threshold"),
                    item.get("at") or "—",
                    item.get("samples"),
                    format_html("{} to {}", item.get("window_from") or "?", item.get("window_to") or "?"),
                )
                for name, item in detections.items()
            ],
        )

    @admin.display(description="audit")
    def audit_link(self, obj: MonitoringAlert) -> Any:
        return _audit_link(obj)
