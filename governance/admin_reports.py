"""Admin pages of reports: a scoped, read-only list (type, subject, period, status and progress,
download link), a request form, and legal-hold buttons for compliance.

Thin: the selector says what each user sees; the forms call ``governance.report_services`` as
``request.user``; a refusal comes back as a message having changed nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html

from governance import report_services, selectors
from governance.admin_signoffs import _NONE, _audit_link, _ScopedReadAdmin
from governance.admin_utils import error_text
from governance.errors import DomainError
from governance.models import Report, ReportStatus
from governance.reports import registry
from models_registry import selectors as registry_selectors


class ReportRequestForm(forms.Form):
    report_type = forms.ChoiceField()
    model = forms.ModelChoiceField(queryset=None, required=False, help_text="For reports on one model.")
    version = forms.IntegerField(required=False, min_value=1, help_text="A version id, for reports on one version.")
    period_from = forms.DateField(
        required=False,
        help_text="First day (UTC), YYYY-MM-DD. Left empty with the last day, a self-assessment covers the last "
        "12 months ending today.",
    )
    period_to = forms.DateField(required=False, help_text="Last day (UTC), inclusive.")
    retention_class = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["report_type"].choices = [(t.key, t.title) for t in registry.report_types().values()]
        self.fields["model"].queryset = registry_selectors.model_list(user=user)
        self.fields["retention_class"].choices = [("", f"default ({settings.GOVERNANCE_DEFAULT_RETENTION_CLASS})")] + [
            (key, f"{key} ({period})") for key, period in settings.GOVERNANCE_RETENTION_CLASSES.items()
        ]


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit log.")


@admin.register(Report)
class ReportAdmin(_ScopedReadAdmin):
    list_display = [
        "id",
        "report_type",
        "subject",
        "period",
        "status",
        "progress_display",
        "requested_by",
        "requested_at",
        "signed",
        "legal_hold",
        "download_link",
    ]
    list_filter = ["report_type", "status", "signed", "legal_hold", "retention_class"]
    search_fields = ["model__name", "sha256"]
    date_hierarchy = "requested_at"
    list_select_related = ["model", "version", "requested_by"]
    fields = [
        "report_type",
        "subject",
        "period",
        "status",
        "progress_display",
        "error",
        "requested_by",
        "requested_at",
        "started_at",
        "finished_at",
        "download_link",
        "sha256",
        "size",
        "page_count",
        "data_sha256",
        "signed",
        "signer_fingerprint",
        "checkpoint_display",
        "retention_class",
        "retain_until",
        "legal_hold",
        "legal_hold_reason",
        "legal_hold_by",
        "legal_hold_at",
        "hold_actions",
        "audit_link",
    ]
    readonly_fields = fields

    def scope(self, request: HttpRequest) -> QuerySet:
        return selectors.report_list(user=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("governance.request_report")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="subject")
    def subject(self, obj: Report) -> str:
        if obj.version_id:
            return str(obj.version)
        return obj.model.name if obj.model_id else "all models"

    @admin.display(description="period")
    def period(self, obj: Report) -> str:
        return f"{obj.period_from} to {obj.period_to}" if obj.period_from else "entire record"

    @admin.display(description="progress")
    def progress_display(self, obj: Report) -> str:
        return f"{obj.progress}% {obj.step}".strip()

    @admin.display(description="PDF")
    def download_link(self, obj: Report) -> Any:
        if obj.status != ReportStatus.SUCCEEDED:
            return _NONE
        return format_html('<a href="/api/reports/{}/download">download ({} pages)</a>', obj.pk, obj.page_count)

    @admin.display(description="checkpoint")
    def checkpoint_display(self, obj: Report) -> Any:
        if obj.checkpoint is None:
            return _NONE
        c = obj.checkpoint
        return format_html("#{} tree size {} root <code>{}</code>", c.pk, c.tree_size, c.root_hash)

    @admin.display(description="legal hold")
    def hold_actions(self, obj: Report) -> Any:
        if obj.legal_hold:
            return format_html(
                '<a href="{}">Release the legal hold</a>', reverse("admin:governance_report_release", args=[obj.pk])
            )
        return format_html('<a href="{}">Put on legal hold</a>', reverse("admin:governance_report_hold", args=[obj.pk]))

    @admin.display(description="audit")
    def audit_link(self, obj: Report) -> Any:
        return _audit_link(obj)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/hold/", wrap(self.hold_view), name="governance_report_hold"),
            path("<int:pk>/release/", wrap(self.release_view), name="governance_report_release"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:governance_report_changelist"))
        form = ReportRequestForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                report = report_services.report_request(
                    actor=request.user,
                    report_type=data["report_type"],
                    model_id=data["model"].pk if data["model"] else None,
                    version_id=data["version"],
                    period_from=data["period_from"],
                    period_to=data["period_to"],
                    retention_class=data["retention_class"] or None,
                )
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"Nothing was requested: {error_text(exc)}", level=messages.ERROR)
            else:
                self.message_user(request, f"Report {report.pk} requested: it is generated in the background.")
                return HttpResponseRedirect(reverse("admin:governance_report_change", args=[report.pk]))
        return self._form_page(request, form, "Request a report", "Request", "")

    def _hold(self, request: HttpRequest, pk: int, *, release: bool) -> HttpResponse:
        report = self.scope(request).filter(pk=pk).first()
        if report is None:
            return HttpResponseRedirect(reverse("admin:governance_report_changelist"))
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            service = report_services.report_legal_hold_release if release else report_services.report_legal_hold_set
            try:
                service(actor=request.user, report=report, reason=form.cleaned_data["reason"])
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"Nothing was changed: {error_text(exc)}", level=messages.ERROR)
            else:
                self.message_user(request, "Legal hold released." if release else "Report put on legal hold.")
            return HttpResponseRedirect(reverse("admin:governance_report_change", args=[pk]))
        title = f"{'Release the legal hold on' if release else 'Put on legal hold'}: report {pk}"
        return self._form_page(request, form, title, "Release" if release else "Hold", "Compliance officers only.")

    def hold_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._hold(request, pk, release=False)

    def release_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._hold(request, pk, release=True)

    def _form_page(self, request: HttpRequest, form: forms.Form, title: str, submit: str, intro: str) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "title": title, "form": form, "submit_label": submit}
        return render(request, "reports/admin_form.html", {**context, "intro": intro, "opts": self.model._meta})
