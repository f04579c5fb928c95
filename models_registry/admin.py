"""Compliance officers' and owners' view of the inventory. Saves and actions call services."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.admin import pretty_json
from governance import selectors as governance_selectors
from governance.admin_utils import ServiceBackedAdmin, adopt, changed_values, error_text
from governance.errors import DomainError
from models_registry import artifacts, datasets, features, lifecycle, selectors, services
from models_registry.choices import LifecycleStatus
from models_registry.models import (
    AssessmentKind,
    AssessmentStatus,
    Dataset,
    Model,
    ModelVersion,
    PostModelAdjustment,
    RiskAssessment,
)


class LifecycleStatusFilter(admin.SimpleListFilter):
    title = "lifecycle status"
    parameter_name = "lifecycle_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(LifecycleStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(lifecycle_status=self.value())
        return queryset


class ScopedAdmin(ServiceBackedAdmin):
    """Admin whose rows and per-object permissions come from the inventory selectors, so each
    role sees its own slice, exactly as in the API."""

    def scope(self, *, user: Any, for_change: bool = False) -> QuerySet:
        raise NotImplementedError

    def _in_scope(self, request: HttpRequest, obj: Any, *, for_change: bool = False) -> bool:
        return self.scope(user=request.user, for_change=for_change).filter(pk=obj.pk).exists()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(user=request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None:
            return self._in_scope(request, obj)
        # Regulators hold no model permission: an engagement alone opens the list to them.
        return super().has_view_permission(request) or self.scope(user=request.user).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or self._in_scope(request, obj, for_change=True)


class ModelAdminForm(forms.ModelForm):
    """The model's fields plus its upstream models, chosen among the models the user may see (the
    admin cannot edit a many-to-many with its own link model; the service writes the links)."""

    upstream = forms.ModelMultipleChoiceField(
        queryset=Model.objects.none(),
        required=False,
        label="Upstream models",
        help_text="The models whose outputs feed this one.",
    )

    class Meta:
        model = Model
        # The admin passes the fieldsets' fields; these are the editable ones.
        fields = [
            "name",
            "purpose",
            "desk",
            "owner",
            "description",
            "objectives",
            "success_criteria",
            "constraints",
            "is_vendor_model",
            "vendor_name",
            "outputs_and_users",
            "restrictions_on_use",
            "model_type",
            "materiality",
            "risk_tier_override",
            "risk_tier_override_justification",
        ]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "upstream" in self.fields and user is not None:
            choices = selectors.model_list(user=user).order_by("name")
            if self.instance.pk is not None:
                choices = choices.exclude(pk=self.instance.pk)
                self.initial["upstream"] = list(self.instance.upstream_models.values_list("pk", flat=True))
            self.fields["upstream"].queryset = choices


@admin.register(Model)
class ModelAdmin(ScopedAdmin):
    form = ModelAdminForm
    list_display = [
        "name",
        "purpose",
        "desk",
        "owner",
        "model_type",
        "complexity_display",
        "risk_tier",
        "status_display",
    ]
    list_filter = ["purpose", "risk_tier", LifecycleStatusFilter, "desk", "model_type"]
    search_fields = ["name", "description", "objectives"]
    readonly_fields = [
        "complexity_display",
        "risk_tier",
        "tier_rationale_display",
        "status_display",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "purpose", "desk", "owner", "description"]}),
        ("Problem definition", {"fields": ["objectives", "success_criteria", "constraints"]}),
        (
            "Inventory: vendor, inputs, outputs and use",
            {
                "fields": [
                    "is_vendor_model",
                    "vendor_name",
                    "upstream",
                    "outputs_and_users",
                    "restrictions_on_use",
                ]
            },
        ),
        (
            "Complexity and risk tier",
            {
                "fields": [
                    "model_type",
                    "complexity_display",
                    "materiality",
                    "risk_tier",
                    "tier_rationale_display",
                    "risk_tier_override",
                    "risk_tier_override_justification",
                ]
            },
        ),
        ("Lifecycle", {"fields": ["status_display", "created_at", "updated_at"]}),
    ]

    def scope(self, *, user: Any, for_change: bool = False) -> QuerySet:
        return selectors.model_list(user=user, for_change=for_change)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*self.readonly_fields, "name"] if obj else list(self.readonly_fields)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)

        class ScopedForm(form):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, user=request.user, **kw)

        return ScopedForm

    @admin.display(description="complexity")
    def complexity_display(self, obj: Model) -> str:
        return obj.complexity.label if obj.model_type else "—"

    @admin.display(description="tier rationale")
    def tier_rationale_display(self, obj: Model) -> str:
        if obj.materiality is None or not obj.model_type:
            return "computed when saved"
        return obj.tier_rationale

    @admin.display(description="lifecycle status", ordering="lifecycle_status")
    def status_display(self, obj: Model) -> str:
        return LifecycleStatus(getattr(obj, "lifecycle_status", "draft")).label

    def save_model(self, request: HttpRequest, obj: Model, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = changed_values(form)
            if "upstream" in changes:
                changes["upstream_models"] = list(changes.pop("upstream"))
            services.model_update(actor=request.user, model=obj, changes=changes)
            return
        data = {k: v for k, v in form.cleaned_data.items() if k in services.MODEL_UPDATABLE_FIELDS | {"name"}}
        data["upstream_models"] = list(form.cleaned_data.get("upstream") or [])
        created = services.model_create(actor=request.user, **data)
        adopt(obj, created)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        # The service wrote the upstream links; the form has no other many-to-many to save.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class DatasetAdminForm(forms.ModelForm):
    upload = forms.FileField(required=False, help_text="CSV file with a header row.")
    rules = forms.JSONField(
        required=False, initial=dict, help_text="Declarative cleansing and validation rules (JSON)."
    )

    class Meta:
        model = Dataset
        fields = [
            "name",
            "description",
            "source_kind",
            "collection_policy",
            "storage_location",
            "classification",
            "desk",
            "owner",
            "time_column",
            "rules",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The content of a registered dataset never changes: a new file is a new dataset.
        # (A view-only user's form has no fields at all.)
        adding = not self.instance.pk
        if "upload" in self.fields:
            self.fields["upload"].required = adding
        for name in ("name", "time_column"):
            if name in self.fields:
                self.fields[name].disabled = not adding

    def clean_rules(self) -> dict[str, Any]:
        rules = self.cleaned_data.get("rules") or {}
        try:
            datasets.parse_rules(rules)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["rules"]) from exc
        return rules

    def clean_feature_pipeline(self) -> str:
        return self.cleaned_data.get("feature_pipeline") or features.DEFAULT_PIPELINE

    def clean_upload(self) -> Any:
        upload = self.cleaned_data.get("upload")
        if upload is not None and upload.size > settings.GOVERNANCE_MAX_DATASET_BYTES:
            raise ValidationError(f"the file is larger than {settings.GOVERNANCE_MAX_DATASET_BYTES:,} bytes")
        return upload

    def _post_clean(self) -> None:
        # Content-derived fields are computed by the service, not by the form's model validation.
        pass


@admin.register(Dataset)
class DatasetAdmin(ScopedAdmin):
    form = DatasetAdminForm
    add_only_fields = ("upload",)
    list_display = ["name", "source_kind", "classification", "row_count", "time_start", "time_end", "validation_status"]
    list_filter = ["classification", "source_kind", "validation_status"]
    search_fields = ["name", "description"]
    readonly_fields = [
        "content_sha256",
        "size_bytes",
        "row_count",
        "time_start",
        "time_end",
        "schema_display",
        "validation_status",
        "validated_at",
        "validation_report",
    ]
    actions = ["run_validation"]

    def scope(self, *, user: Any, for_change: bool = False) -> QuerySet:
        return selectors.dataset_list(user=user, for_change=for_change)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if request.method == "GET":
            services.dataset_access_log(actor=request.user, dataset_id=object_id, kind="read")
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="schema")
    def schema_display(self, obj: Dataset) -> str:
        return format_html_join(", ", "{} ({})", ((c["name"], c["dtype"]) for c in obj.schema)) if obj.schema else "—"

    @admin.display(description="last validation")
    def validation_report(self, obj: Dataset) -> str:
        if not obj.validation_result:
            return "not validated yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (c["rule"], c["column"] or "", "pass" if c["passed"] else "FAIL", c["message"])
                for c in obj.validation_result["checks"]
            ),
        )
        cleansing = json.dumps(obj.validation_result.get("cleansing", {}))
        return format_html(
            "<p>cleansing: {}</p><table><tr><th>rule</th><th>column</th><th>result</th><th>detail</th></tr>{}</table>",
            cleansing,
            rows,
        )

    def save_model(self, request: HttpRequest, obj: Dataset, form: DatasetAdminForm, change: bool) -> None:
        if change:
            services.dataset_update(actor=request.user, dataset=obj, changes=changed_values(form))
            return
        data = dict(form.cleaned_data)
        content = data.pop("upload").read()
        created = services.dataset_register(actor=request.user, content=content, **data)
        adopt(obj, created)

    @admin.action(description="Run cleansing and validation rules")
    def run_validation(self, request: HttpRequest, queryset: QuerySet) -> None:
        for dataset in queryset:
            try:
                result = services.dataset_validate(actor=request.user, dataset=dataset)
            except DomainError as exc:
                self.message_user(request, f"{dataset}: {exc}", level=messages.ERROR)
                continue
            level = messages.SUCCESS if result.validation_status == "passed" else messages.WARNING
            self.message_user(request, f"{dataset}: validation {result.validation_status}", level=level)


class ModelVersionAdminForm(forms.ModelForm):
    upload = forms.FileField(required=False, help_text="skops archive (.skops). Pickle and joblib files are refused.")
    code_repository = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "version",
            "framework",
            "hyperparameters",
            "code_repository",
            "code_commit",
            "training_dataset",
            "validation_dataset",
            "test_dataset",
            "feature_pipeline",
            "target",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The artifact of a version never changes: a new artifact is a new version.
        # (A view-only user's form has no fields at all.)
        adding = not self.instance.pk
        if "framework" in self.fields:
            self.fields["framework"].required = False
        if "feature_pipeline" in self.fields:  # left out: the default pipeline ("columns")
            self.fields["feature_pipeline"].required = False
        if "upload" in self.fields:
            self.fields["upload"].required = adding
        for name in ("model", "version"):
            if name in self.fields:
                self.fields[name].disabled = not adding

    def clean_feature_pipeline(self) -> str:
        return self.cleaned_data.get("feature_pipeline") or features.DEFAULT_PIPELINE

    def clean_upload(self) -> Any:
        upload = self.cleaned_data.get("upload")
        if upload is None:
            return upload
        if upload.size > settings.GOVERNANCE_MAX_ARTIFACT_BYTES:
            raise ValidationError(f"the artifact is larger than {settings.GOVERNANCE_MAX_ARTIFACT_BYTES:,} bytes")
        try:
            artifacts.inspect_artifact(upload.read())
        except DomainError as exc:
            raise ValidationError(str(exc)) from exc
        upload.seek(0)
        return upload

    def _post_clean(self) -> None:
        pass


_VERSION_DATASET_FIELDS = ("training_dataset", "validation_dataset", "test_dataset")


def _transition_action(target: LifecycleStatus) -> Any:
    def action(modeladmin: ModelVersionAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        for version in queryset:
            try:
                services.model_version_transition(actor=request.user, version=version, to_status=target)
            except (DomainError, ValidationError) as exc:
                modeladmin.message_user(request, f"{version}: {error_text(exc)}", level=messages.ERROR)
            else:
                modeladmin.message_user(request, f"{version}: now {target.label.lower()}", level=messages.SUCCESS)

    action.__name__ = f"move_to_{target.value}"
    return admin.action(description=f"Move to: {target.label}", permissions=["transition"])(action)


@admin.register(ModelVersion)
class ModelVersionAdmin(ScopedAdmin):
    form = ModelVersionAdminForm
    add_only_fields = ("upload",)
    list_display = ["__str__", "status", "estimator_class_short", "created_by", "created_at"]
    list_filter = ["status", "model__purpose", "model__risk_tier"]
    search_fields = ["model__name", "version", "artifact_sha256"]
    readonly_fields = [
        "status",
        "allowed_transitions",
        "artifact_sha256",
        "artifact_size",
        "artifact_format",
        "estimator_class",
        "n_features",
        "feature_names",
        "created_by",
        "created_at",
        "status_changed_at",
    ]
    actions = [*(_transition_action(status) for status in LifecycleStatus), "run_full_assessment"]

    def scope(self, *, user: Any, for_change: bool = False) -> QuerySet:
        return selectors.model_version_list(user=user, for_change=for_change)

    def has_transition_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("models_registry.transition_modelversion")

    def has_request_assessment_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("models_registry.request_riskassessment")

    @admin.action(description="Run a full risk assessment", permissions=["request_assessment"])
    def run_full_assessment(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Ask for a full assessment (default parameters) of each selected version, as the user;
        one message per version: created, the same inputs' existing one reused, or refused and why."""
        for version in queryset:
            try:
                assessment, created = services.assessment_request(
                    actor=request.user, version=version, kind=AssessmentKind.FULL
                )
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"{version}: not assessed: {error_text(exc)}", level=messages.ERROR)
                continue
            assessment.refresh_from_db()
            link = _admin_link(assessment, f"risk assessment {assessment.pk}")
            state = assessment.get_status_display().lower()
            if assessment.rating:
                state += f", rated {assessment.rating}"
            if created:
                text = format_html("{}: {} requested (now {}).", version, link, state)
                self.message_user(request, text, level=messages.SUCCESS)
            else:
                text = format_html("{}: {} already has these inputs (now {}); reused.", version, link, state)
                self.message_user(request, text, level=messages.INFO)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Choices from the selectors, never the default managers: a version goes on a model the
        # user may change and names datasets the user may see (as in the API).
        if db_field.name == "model":
            kwargs["queryset"] = selectors.model_list(user=request.user, for_change=True)
        elif db_field.name in _VERSION_DATASET_FIELDS:
            kwargs["queryset"] = selectors.dataset_list(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ModelVersion | None = None) -> list[str]:
        fields = super().get_fields(request, obj)
        if obj is None:
            return fields
        # A dataset the user cannot see is left out of the form: not named, and not cleared by a save.
        named = {getattr(obj, f"{name}_id") for name in _VERSION_DATASET_FIELDS} - {None}
        if not named:
            return fields
        visible = set(selectors.dataset_list(user=request.user).filter(pk__in=named).values_list("pk", flat=True))
        hidden = {name for name in _VERSION_DATASET_FIELDS if getattr(obj, f"{name}_id") not in visible | {None}}
        return [name for name in fields if name not in hidden]

    def get_readonly_fields(self, request: HttpRequest, obj: ModelVersion | None = None) -> list[str]:
        if obj is not None and obj.status not in services.VERSION_EDITABLE_STATUSES:
            return [*self.readonly_fields, *services.VERSION_UPDATABLE_FIELDS]
        return list(self.readonly_fields)

    @admin.display(description="estimator")
    def estimator_class_short(self, obj: ModelVersion) -> str:
        return obj.estimator_class.rsplit(".", 1)[-1]

    @admin.display(description="allowed transitions")
    def allowed_transitions(self, obj: ModelVersion) -> str:
        return ", ".join(lifecycle.allowed_targets(obj.status)) or "none (terminal)"

    def save_model(self, request: HttpRequest, obj: ModelVersion, form: ModelVersionAdminForm, change: bool) -> None:
        if change:
            services.model_version_update(actor=request.user, version=obj, changes=changed_values(form))
            return
        data = dict(form.cleaned_data)
        content = data.pop("upload").read()
        created = services.model_version_create(actor=request.user, artifact=content, **data)
        adopt(obj, created)


# --- Risk assessments (read-only; requested from versions, cancelled by a button) ---------------

_NONE = format_html("<em>{}</em>", "none")
_RATING_COLOURS = {"green": "#2e7d32", "amber": "#ef6c00", "red": "#c62828"}
_DETAIL_ONLY = ("results", "overfitting", "explainability", "parameters", "inputs", "environment")


def _admin_link(obj: Any, label: Any = None) -> SafeString:
    if obj is None:
        return _NONE
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if label is None else label)


def _table(headers: list[str], rows: list[tuple[Any, ...]]) -> SafeString:
    if not rows:
        return _NONE
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


class RiskAssessmentActionForm(forms.Form):
    _assessment = forms.ChoiceField(choices=[("cancel", "cancel")])
    cancel_reason = forms.CharField(required=False, max_length=2000)


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(ScopedAdmin):
    """Assessments as the selector scopes them: progress while they run, then metrics, rating
    and the findings they raised. Nothing is edited here; a Cancel button calls the service."""

    change_form_template = "admin/models_registry/riskassessment/change_form.html"
    list_display = [
        "pk",
        "model",
        "version_label",
        "kind",
        "status",
        "progress_display",
        "rating_badge",
        "requested_by_label",
        "queued_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "rating"]
    search_fields = ["model__name", "version__version"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "model_link",
                    "version_link",
                    "kind",
                    "status",
                    "progress_display",
                    "cancel_requested",
                    "requested_by_label",
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "duration_display",
                    "attempts",
                    "error_display",
                ]
            },
        ),
        ("Rating", {"fields": ["rating_badge", "rating_rules_display", "rating_decision_link"]}),
        ("Results", {"fields": ["metrics_display", "equity_display", "overfitting_display", "explainability_display"]}),
        ("Findings raised", {"fields": ["findings_display"]}),
        (
            "Reproducibility",
            {
                "fields": [
                    "parameters_display",
                    "inputs_key",
                    "inputs_display",
                    "random_seed",
                    "environment_display",
                    "celery_task_id",
                    "audit_link",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def scope(self, *, user: Any, for_change: bool = False) -> QuerySet:
        return selectors.assessment_list(user=user)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name and match.url_name.endswith("_changelist"):
            return qs.defer(*_DETAIL_ONLY)
        return qs

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Only the findings the user may see (the finding selector's scope), for the page.
            obj.visible_findings = list(
                governance_selectors.finding_list(user=request.user).filter(assessment=obj).order_by("pk")
            )
        return obj

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _may_cancel(self, request: HttpRequest, obj: RiskAssessment) -> bool:
        """Offer the button (a hint only: the service decides, and says why not)."""
        return not obj.is_final and request.user.has_perm("models_registry.request_riskassessment")

    @csrf_protect_m
    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if object_id is not None and request.method == "POST" and "_assessment" in request.POST:
            return self._cancel(request, object_id)
        if object_id is not None:
            obj = self.get_object(request, object_id)
            if obj is not None:
                extra_context = {**(extra_context or {}), "assessment_cancels": self._may_cancel(request, obj)}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _cancel(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        here = HttpResponseRedirect(request.get_full_path())
        form = RiskAssessmentActionForm(request.POST)
        if not form.is_valid():
            problems = "; ".join(" ".join(errors) for errors in form.errors.values())
            self.message_user(request, f"Nothing was changed: {problems}", level=messages.ERROR)
            return here
        try:
            obj = services.assessment_cancel(
                actor=request.user, assessment=obj, reason=form.cleaned_data["cancel_reason"]
            )
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Nothing was changed: {error_text(exc)}", level=messages.ERROR)
            return here
        if obj.status == AssessmentStatus.CANCELLED:
            self.message_user(request, f"Risk assessment {obj.pk} cancelled.", level=messages.SUCCESS)
        else:
            self.message_user(
                request, f"Risk assessment {obj.pk} will stop at its next step (cancel requested).", messages.SUCCESS
            )
        return here

    # --- Columns and read-only fields --------------------------------------------------------

    @admin.display(description="version", ordering="version__version")
    def version_label(self, obj: RiskAssessment) -> str:
        return obj.version.version

    @admin.display(description="progress")
    def progress_display(self, obj: RiskAssessment) -> str:
        step = obj.current_step or "waiting in the queue"
        stopping = " (cancel requested)" if obj.cancel_requested and not obj.is_final else ""
        return f"{obj.progress_percent}% · {step}{stopping}"

    @admin.display(description="rating", ordering="rating")
    def rating_badge(self, obj: RiskAssessment) -> SafeString:
        if not obj.rating:
            return format_html("<em>{}</em>", "not rated")
        return format_html(
            '<span style="background:{};color:#fff;padding:1px 8px;border-radius:8px;font-weight:bold">{}</span>',
            _RATING_COLOURS.get(obj.rating, "#555"),
            obj.get_rating_display(),
        )

    @admin.display(description="model")
    def model_link(self, obj: RiskAssessment) -> SafeString:
        return _admin_link(obj.model)

    @admin.display(description="version")
    def version_link(self, obj: RiskAssessment) -> SafeString:
        return _admin_link(obj.version)

    @admin.display(description="duration")
    def duration_display(self, obj: RiskAssessment) -> str:
        if obj.started_at is None or obj.finished_at is None:
            return "—"
        return f"{(obj.finished_at - obj.started_at).total_seconds():.1f} s"

    @admin.display(description="error")
    def error_display(self, obj: RiskAssessment) -> SafeString:
        if not obj.error:
            return _NONE
        return format_html(
            "<strong>{}</strong>: {}{}",
            obj.error.get("code", ""),
            obj.error.get("message", ""),
            pretty_json(obj.error["detail"]) if obj.error.get("detail") else "",
        )

    @admin.display(description="rules that decided it")
    def rating_rules_display(self, obj: RiskAssessment) -> SafeString:
        return _table(
            ["rule", "outcome", "message", "references"],
            [
                (r.get("id") or "—", r.get("outcome", ""), r.get("message") or "", "; ".join(r.get("references") or []))
                for r in obj.rating_rules or []
            ],
        )

    @admin.display(description="policy decision")
    def rating_decision_link(self, obj: RiskAssessment) -> SafeString:
        if obj.rating_decision_id is None:
            return _NONE
        url = reverse("admin:governance_policydecision_change", args=[obj.rating_decision_id])
        return format_html('<a href="{}">decision {}</a>', url, obj.rating_decision_id)

    @admin.display(description="metrics")
    def metrics_display(self, obj: RiskAssessment) -> SafeString:
        return _table(
            ["metric", "value"], [(name, _number(value)) for name, value in sorted((obj.metrics or {}).items())]
        )

    @admin.display(description="equity curve (backtest)")
    def equity_display(self, obj: RiskAssessment) -> SafeString:
        curve = ((obj.results or {}).get("backtest") or {}).get("equity_curve")
        if not curve or not curve.get("dates"):
            return _NONE
        dates = curve["dates"]
        rows = [
            (series, _number(curve[series][0]), _number(curve[series][-1]))
            for series in ("strategy", "benchmark")
            if curve.get(series)
        ]
        thinned = curve.get("downsampled_from")
        points = f"{len(dates)} points" + (f" (thinned from {thinned})" if thinned else "")
        return format_html(
            "<p>{} to {}, {}</p>{}",
            dates[0],
            dates[-1],
            points,
            _table(["series", "first", "last"], rows),
        )

    @admin.display(description="overfitting")
    def overfitting_display(self, obj: RiskAssessment) -> SafeString:
        return pretty_json(obj.overfitting)

    @admin.display(description="explainability")
    def explainability_display(self, obj: RiskAssessment) -> SafeString:
        if not obj.explainability:
            return _NONE
        return format_html("{}: {}", obj.explainability.get("method", ""), obj.explainability.get("summary", ""))

    @admin.display(description="findings")
    def findings_display(self, obj: RiskAssessment) -> SafeString:
        findings = getattr(obj, "visible_findings", [])
        return _table(
            ["finding", "severity", "status", "due"],
            [(_admin_link(f, f.title), f.severity, f.get_status_display(), f.due_date) for f in findings],
        )

    @admin.display(description="parameters")
    def parameters_display(self, obj: RiskAssessment) -> SafeString:
        return pretty_json(obj.parameters)

    @admin.display(description="inputs")
    def inputs_display(self, obj: RiskAssessment) -> SafeString:
        return pretty_json(obj.inputs)

    @admin.display(description="environment")
    def environment_display(self, obj: RiskAssessment) -> SafeString:
        return pretty_json(obj.environment)

    @admin.display(description="audit")
    def audit_link(self, obj: RiskAssessment) -> SafeString:
        url = reverse("admin:audit_event_changelist")
        return format_html(
            '<a href="{}?object_type={}&amp;object_id={}">audit events</a>', url, obj._meta.label_lower, obj.pk
        )


from models_registry import admin_access  # noqa: E402, F401  (registers the access pages)


class AdjustmentRecordForm(forms.ModelForm):
    class Meta:
        model = PostModelAdjustment
        fields = [
            "version",
            "adjustment",
            "description",
            "reason",
            "effective_from",
            "effective_until",
            "approved_by",
        ]

    def _post_clean(self) -> None:
        # The service validates and fills the rest (model, who recorded it, when).
        pass


class AdjustmentWithdrawForm(forms.ModelForm):
    withdrawal_reason = forms.CharField(widget=forms.Textarea, required=True, label="Reason for withdrawing")

    class Meta:
        model = PostModelAdjustment
        fields = ["withdrawal_reason"]

    def _post_clean(self) -> None:
        pass


_ADJUSTMENT_READONLY = [
    "model",
    "version",
    "adjustment",
    "description",
    "reason",
    "effective_from",
    "effective_until",
    "approved_by",
    "status_display",
    "created_by_label",
    "created_at",
    "withdrawn_at",
    "withdrawn_by_label",
]


@admin.register(PostModelAdjustment)
class PostModelAdjustmentAdmin(ServiceBackedAdmin):
    """The post-model adjustment register: compliance officers record and withdraw adjustments;
    everyone else with ``view_postmodeladjustment`` reads those on the versions they see."""

    list_display = ["pk", "model", "version", "adjustment", "status_display", "effective_from", "effective_until"]
    list_filter = ["model"]
    search_fields = ["model__name", "adjustment", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.adjustment_list(user=request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_view_permission(request, obj):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # "Change" is withdrawal: only while the adjustment is scheduled or active.
        if not request.user.has_perm("models_registry.withdraw_postmodeladjustment"):
            return False
        if obj is None:
            return True
        found = self.get_queryset(request).filter(pk=obj.pk).first()
        return found is not None and found.status in ("scheduled", "active")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = AdjustmentWithdrawForm if obj is not None else AdjustmentRecordForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, dict[str, Any]]]:
        if obj is None:
            return [(None, {"fields": AdjustmentRecordForm.Meta.fields})]
        fieldsets: list[tuple[Any, dict[str, Any]]] = [(None, {"fields": _ADJUSTMENT_READONLY})]
        if self.has_change_permission(request, obj):
            fieldsets.append(("Withdraw", {"fields": ["withdrawal_reason"]}))
        else:
            fieldsets[0][1]["fields"] = [*_ADJUSTMENT_READONLY, "withdrawal_reason"]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        if self.has_change_permission(request, obj):
            return list(_ADJUSTMENT_READONLY)
        return [*_ADJUSTMENT_READONLY, "withdrawal_reason"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "version":
            kwargs["queryset"] = selectors.model_version_list(user=request.user)
        elif db_field.name == "approved_by":
            from django.contrib.auth import get_user_model

            kwargs["queryset"] = get_user_model().objects.filter(is_active=True).order_by("username")
            kwargs["required"] = False
            kwargs["help_text"] = "The compliance officer who approved it; you when left empty."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="status")
    def status_display(self, obj: PostModelAdjustment) -> str:
        return str(getattr(obj, "status", "")) or "-"

    def save_model(self, request: HttpRequest, obj: PostModelAdjustment, form: forms.ModelForm, change: bool) -> None:
        if change:
            services.adjustment_withdraw(
                actor=request.user, adjustment=obj, reason=form.cleaned_data.get("withdrawal_reason", "")
            )
            return
        adopt(obj, services.adjustment_create(actor=request.user, **form.cleaned_data))
