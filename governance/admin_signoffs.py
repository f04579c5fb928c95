"""Admin pages of the sign-off workflow, findings, policy sets and policy decisions.

Thin: the selectors say what each user sees, the services make every change (as
``request.user``), and a refusal comes back as a message having changed nothing. Deciding a
request (approve, reject, request changes) and withdrawing it are buttons on its change page,
posted to that page and handled outside the admin's request-wide transaction, so that a
refusal's own records (``sod.refused``, the policy decision) outlive the refused step.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.admin import pretty_json
from governance import selectors, services
from governance.admin_utils import ServiceBackedAdmin, adopt, changed_values, error_text
from governance.errors import DomainError
from governance.models import Finding, PolicyDecision, PolicySet, SignOffRequest, SignOffResponse
from governance.roles import Role
from models_registry import selectors as registry_selectors
from models_registry.choices import LifecycleStatus
from models_registry.models import ModelVersion

User = get_user_model()

_NONE = format_html("<em>{}</em>", "none")


def _table(headers: list[str], rows: list[tuple[Any, ...]]) -> SafeString:
    if not rows:
        return _NONE
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


def _reasons_table(reasons: list[dict[str, Any]]) -> SafeString:
    return _table(
        ["rule", "outcome", "message", "references"],
        [
            (r.get("id", ""), r.get("outcome", ""), r.get("message") or "", "; ".join(r.get("references") or []))
            for r in reasons
        ],
    )


def _approvals_table(required: list[dict[str, Any]]) -> SafeString:
    return _table(
        ["rule", "roles", "needed", "approved by", "met"],
        [
            (
                item.get("rule", ""),
                ", ".join(item.get("roles") or []),
                item.get("count", ""),
                ", ".join(item.get("approved_by") or []) or "—",
                "yes" if item.get("satisfied") else "no",
            )
            for item in required
        ],
    )


def _admin_link(obj: Any, label: Any = None) -> SafeString:
    if obj is None:
        return _NONE
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label if label is not None else obj)


def _audit_link(obj: Any) -> SafeString:
    url = reverse("admin:audit_event_changelist")
    return format_html(
        '<a href="{}?object_type={}&amp;object_id={}">audit events</a>', url, obj._meta.label_lower, obj.pk
    )


class _ScopedReadAdmin(admin.ModelAdmin):
    """Rows from a selector; an object outside it is not found, whatever the permissions."""

    def scope(self, request: HttpRequest) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_view_permission(request, obj):
            return False
        return obj is None or self.scope(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Sign-off requests --------------------------------------------------------------------


class AttentionFilter(admin.SimpleListFilter):
    """What needs someone's attention. Compliance officers land on "needs attention"."""

    title = "attention"
    parameter_name = "attention"
    ALL = "all"
    NEEDS_ATTENTION = "needs_attention"

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.request = request
        if self.parameter_name not in self.used_parameters and _is_compliance_officer(request.user):
            self.used_parameters[self.parameter_name] = self.NEEDS_ATTENTION

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (self.NEEDS_ATTENTION, "Needs attention (open or blocked)"),
            ("pending", "Pending"),
            ("blocked", "Blocked by policy"),
            ("overdue", "Overdue"),
            ("expired", "Expired"),
        ]

    def choices(self, changelist: Any) -> Any:
        value = self.value()
        yield {
            "selected": value in (None, self.ALL),
            "query_string": changelist.get_query_string({self.parameter_name: self.ALL}),
            "display": "All",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.NEEDS_ATTENTION:
            return queryset.filter(pk__in=selectors.signoff_requests_needing_attention(user=request.user).values("pk"))
        if value == "overdue":
            return queryset.filter(is_overdue=True)
        if value in ("pending", "blocked", "expired"):
            return queryset.filter(status=value)
        return queryset


def _is_compliance_officer(user: Any) -> bool:
    return user.is_authenticated and Role.COMPLIANCE_OFFICER.value in selectors.user_roles(user)


class SignOffSubmitForm(forms.ModelForm):
    """A model owner's request; the service checks everything but the shape of the input."""

    version = forms.ModelChoiceField(queryset=ModelVersion.objects.none())
    to_status = forms.ChoiceField(
        choices=[(LifecycleStatus.APPROVED.value, "approved (for use)"), (LifecycleStatus.DEPLOYED.value, "deployed")],
    )
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    evidence = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One document per line: <code>title | reference</code> (a document id, report or link).",
    )
    phase = forms.CharField(required=False, help_text="Deployments only: the proposed phase, e.g. phase_1.")
    capital_limit = forms.DecimalField(required=False, min_value=0, decimal_places=2, max_digits=20)
    instruments = forms.CharField(required=False, help_text="Comma-separated, e.g. NVDA, ORCL.")
    rollback_plan = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = SignOffRequest
        fields: list[str] = []

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            # Only versions of models the owner may change: the ones they may ask a sign-off for.
            self.fields["version"].queryset = registry_selectors.model_version_list(user=user, for_change=True)

    def clean_evidence(self) -> list[dict[str, str]]:
        items, problems = [], []
        for number, line in enumerate(self.cleaned_data["evidence"].splitlines(), start=1):
            if not line.strip():
                continue
            title, bar, reference = line.partition("|")
            if not bar:
                problems.append(f"line {number}: write it as 'title | reference'")
                continue
            items.append({"title": title.strip(), "reference": reference.strip()})
        if problems:
            raise ValidationError(problems)
        return items

    def deployment(self) -> dict[str, Any] | None:
        """The deployment fields as the service's proposal; None when none was given."""
        data = self.cleaned_data
        proposal: dict[str, Any] = {}
        if data.get("phase"):
            proposal["phase"] = data["phase"]
        if data.get("capital_limit") is not None:
            proposal["capital_limit"] = str(data["capital_limit"])
        instruments = [i.strip() for i in (data.get("instruments") or "").split(",") if i.strip()]
        if instruments:
            proposal["instruments"] = instruments
        if data.get("rollback_plan"):
            proposal["rollback_plan"] = data["rollback_plan"]
        return proposal or None

    def _post_clean(self) -> None:
        # The request's fields are set by the service, not by model validation of this form.
        pass


class _ReadOnlyRequestForm(forms.ModelForm):
    class Meta:
        model = SignOffRequest
        fields: list[str] = []


class SignOffActionForm(forms.Form):
    """A button on the change page: decide or withdraw, with the comment or reason."""

    ACTIONS = {
        "approve": "approved",
        "reject": "rejected",
        "request_changes": "sent back for changes",
        "withdraw": "withdrawn",
    }

    _signoff = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    signoff_comment = forms.CharField(
        error_messages={"required": "a comment (or, withdrawing, a reason) is required"}, strip=True
    )


class SignOffResponseInline(admin.TabularInline):
    model = SignOffResponse
    extra = 0
    can_delete = False
    fields = ["round", "approver_label", "roles_display", "verdict", "comment", "decided_at"]
    readonly_fields = fields
    ordering = ["round", "decided_at", "pk"]
    verbose_name_plural = "responses (every round)"

    @admin.display(description="roles")
    def roles_display(self, obj: SignOffResponse) -> str:
        return ", ".join(obj.roles)

    # The parent page is already scoped: whoever sees the request sees its responses.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


_REQUEST_FIELDS = [
    "model",
    "version_link",
    "transition",
    "status",
    "round",
    "requested_by",
    "justification",
    "evidence_display",
    "deployment_display",
    "approvals_display",
    "reasons_display",
    "decision_link",
    "submitted_at",
    "due_at",
    "overdue_display",
    "expires_at",
    "closed_at",
    "version_changed_display",
]


@admin.register(SignOffRequest)
class SignOffRequestAdmin(ServiceBackedAdmin, _ScopedReadAdmin):
    form = SignOffSubmitForm
    change_form_template = "admin/governance/signoffrequest/change_form.html"
    list_display = [
        "pk",
        "model",
        "version",
        "transition",
        "status",
        "requested_by",
        "submitted_at",
        "due_at",
        "overdue",
        "approvals_so_far",
    ]
    list_display_links = ["pk", "model"]
    list_filter = [AttentionFilter, "status", "to_status"]
    search_fields = ["model__name", "version__version", "justification"]
    inlines = [SignOffResponseInline]
    readonly_fields = _REQUEST_FIELDS
    add_fieldsets = [
        (None, {"fields": ["version", "to_status", "justification", "evidence"]}),
        (
            "Deployment proposal (for a move to deployed)",
            {"fields": ["phase", "capital_limit", "instruments", "rollback_plan"]},
        ),
    ]

    def scope(self, request: HttpRequest) -> QuerySet:
        return selectors.signoff_request_list(user=request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The fingerprint (version changed?) reads the version's datasets: fetched with the row.
        return self.scope(request).select_related(
            "version__training_dataset", "version__validation_dataset", "version__test_dataset"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("governance.add_signoffrequest")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing on a request is edited: it changes only through the buttons (services).
        return False

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, dict[str, Any]]]:
        if obj is None:
            return self.add_fieldsets
        return [
            (None, {"fields": _REQUEST_FIELDS[:8]}),
            ("Approvals and policies", {"fields": _REQUEST_FIELDS[8:12]}),
            ("Dates", {"fields": _REQUEST_FIELDS[12:]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(_REQUEST_FIELDS) if obj is not None else []

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            kwargs["form"] = _ReadOnlyRequestForm
            return super().get_form(request, obj, change=change, **kwargs)
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class _ForUser(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, user=request.user, **kw)

        return _ForUser

    def save_model(self, request: HttpRequest, obj: SignOffRequest, form: SignOffSubmitForm, change: bool) -> None:
        data = form.cleaned_data
        created = services.signoff_submit(
            actor=request.user,
            version=data["version"],
            to_status=data["to_status"],
            justification=data["justification"],
            evidence=data["evidence"],
            deployment=form.deployment(),
        )
        adopt(obj, created)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def response_add(self, request: HttpRequest, obj: SignOffRequest, post_url_continue: str | None = None) -> Any:
        self.message_user(request, f"Sign-off request {obj.pk} submitted; its approvers were told.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:governance_signoffrequest_change", args=[obj.pk]))

    # --- The buttons: decide or withdraw --------------------------------------------------

    @csrf_protect_m
    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if object_id is not None and request.method == "POST" and "_signoff" in request.POST:
            return self._signoff_action(request, object_id)
        if object_id is not None:
            extra_context = {**(extra_context or {}), **self._buttons(request, object_id)}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _buttons(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        """Which buttons to offer (a hint only: the services decide, and say why not)."""
        obj = self.get_object(request, object_id)
        if obj is None:
            return {}
        user = request.user
        roles = set(selectors.user_roles(user))
        decides = obj.status == SignOffRequest.Status.PENDING and bool(
            roles & selectors.all_approval_roles(obj.required_approvals)
        )
        withdraws = obj.is_open and (obj.requested_by_id == user.pk or user.has_perm("governance.add_signoffrequest"))
        return {"signoff_decides": decides, "signoff_withdraws": withdraws}

    def _signoff_action(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        here = HttpResponseRedirect(request.get_full_path())
        form = SignOffActionForm(request.POST)
        if not form.is_valid():
            problems = "; ".join(" ".join(errors) for errors in form.errors.values())
            self.message_user(request, f"Nothing was changed: {problems}", level=messages.ERROR)
            return here
        action, text = form.cleaned_data["_signoff"], form.cleaned_data["signoff_comment"]
        try:
            if action == "withdraw":
                obj = services.signoff_withdraw(actor=request.user, request=obj, reason=text)
            else:
                obj = services.signoff_respond(actor=request.user, request=obj, verdict=action, comment=text)
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Nothing was changed: {error_text(exc)}", level=messages.ERROR)
            return here
        done = SignOffActionForm.ACTIONS[action]
        level = messages.WARNING if obj.status == SignOffRequest.Status.BLOCKED else messages.SUCCESS
        self.message_user(
            request, f"Sign-off request {obj.pk} {done}: now {obj.get_status_display().lower()}.", level=level
        )
        return here

    # --- Columns and read-only fields ----------------------------------------------------

    @admin.display(description="transition")
    def transition(self, obj: SignOffRequest) -> str:
        return obj.transition

    @admin.display(description="overdue", boolean=True, ordering="due_at")
    def overdue(self, obj: SignOffRequest) -> bool:
        return bool(getattr(obj, "is_overdue", False))

    @admin.display(description="approvals so far / required")
    def approvals_so_far(self, obj: SignOffRequest) -> str:
        if not obj.required_approvals:
            return "—"
        return " · ".join(
            f"{item['rule']} {min(len(item.get('approved_by') or []), item['count'])}/{item['count']}"
            for item in obj.required_approvals
        )

    @admin.display(description="version")
    def version_link(self, obj: SignOffRequest) -> SafeString:
        return _admin_link(obj.version)

    @admin.display(description="evidence")
    def evidence_display(self, obj: SignOffRequest) -> SafeString:
        return _table(["title", "reference"], [(e.get("title", ""), e.get("reference", "")) for e in obj.evidence])

    @admin.display(description="deployment proposal")
    def deployment_display(self, obj: SignOffRequest) -> SafeString:
        return pretty_json(obj.deployment)

    @admin.display(description="required approvals")
    def approvals_display(self, obj: SignOffRequest) -> SafeString:
        return _approvals_table(obj.required_approvals)

    @admin.display(description="reasons (rules that deny, need approval or warn)")
    def reasons_display(self, obj: SignOffRequest) -> SafeString:
        return _reasons_table(obj.reasons)

    @admin.display(description="latest policy decision")
    def decision_link(self, obj: SignOffRequest) -> SafeString:
        decision = obj.latest_decision
        if decision is None:
            return _NONE
        return _admin_link(decision, f"decision {decision.pk}: {decision.get_outcome_display().lower()}")

    @admin.display(description="overdue", boolean=True)
    def overdue_display(self, obj: SignOffRequest) -> bool:
        return obj.is_open and obj.due_at < timezone.now()

    @admin.display(description="version changed since submission", boolean=True)
    def version_changed_display(self, obj: SignOffRequest) -> bool:
        return selectors.version_fingerprint(obj.version) != obj.version_fingerprint


# --- Findings -----------------------------------------------------------------------------


class FindingOverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue (not closed, past due)"), ("no", "Not overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # ``is_overdue`` is annotated by selectors.finding_list, the admin's queryset.
        if self.value() in ("yes", "no"):
            return queryset.filter(is_overdue=self.value() == "yes")
        return queryset


class FindingRaiseForm(forms.ModelForm):
    class Meta:
        model = Finding
        fields = ["version", "severity", "title", "description", "remediation_owner", "due_date"]

    def _post_clean(self) -> None:
        pass


class FindingChangeForm(forms.ModelForm):
    reason = forms.CharField(required=False, help_text="Needed to close or reopen a finding.")

    class Meta:
        model = Finding
        fields = ["status", "due_date", "resolution", "remediation_owner"]

    def _post_clean(self) -> None:
        pass


_FINDING_READONLY = ["model", "version", "title", "description", "severity", "raised_by", "raised_at"]
_FINDING_CLOSED = ["closed_at", "closed_by", "overdue_display"]


@admin.register(Finding)
class FindingAdmin(ServiceBackedAdmin, _ScopedReadAdmin):
    list_display = ["title", "model", "version", "severity", "status", "remediation_owner", "due_date", "overdue"]
    list_filter = ["severity", "status", FindingOverdueFilter]
    search_fields = ["title", "description", "model__name"]

    def scope(self, request: HttpRequest) -> QuerySet:
        return selectors.finding_list(user=request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or self.scope(request).filter(pk=obj.pk).exists()

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = FindingChangeForm if obj is not None else FindingRaiseForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, dict[str, Any]]]:
        if obj is None:
            return [(None, {"fields": FindingRaiseForm.Meta.fields})]
        return [
            (None, {"fields": _FINDING_READONLY}),
            ("Remediation", {"fields": [*FindingChangeForm.Meta.fields, "reason", *_FINDING_CLOSED]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*_FINDING_READONLY, *_FINDING_CLOSED] if obj is not None else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Choices from the selectors: findings are raised on versions the user can see.
        if db_field.name == "version":
            kwargs["queryset"] = registry_selectors.model_version_list(user=request.user)
        elif db_field.name == "remediation_owner":
            kwargs["queryset"] = User.objects.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Finding, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = {k: v for k, v in changed_values(form).items() if k != "reason"}
            services.finding_update(
                actor=request.user, finding=obj, changes=changes, reason=form.cleaned_data.get("reason", "")
            )
            return
        adopt(obj, services.finding_raise(actor=request.user, **form.cleaned_data))

    @admin.display(description="overdue", boolean=True, ordering="due_date")
    def overdue(self, obj: Finding) -> bool:
        return bool(getattr(obj, "is_overdue", False))

    @admin.display(description="overdue", boolean=True)
    def overdue_display(self, obj: Finding) -> bool:
        return self.overdue(obj)


# --- Policy sets and decisions (read-only) ------------------------------------------------


class _ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PolicySet)
class PolicySetAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["short_hash", "is_active", "rule_count", "activated_at", "activated_by_label", "created_at"]
    list_filter = ["is_active"]
    fields = ["content_hash", "is_active", "activated_at", "activated_by_label", "created_at", "rules", "files_display"]
    readonly_fields = fields

    @admin.display(description="content hash", ordering="content_hash")
    def short_hash(self, obj: PolicySet) -> str:
        return obj.content_hash[:12]

    @admin.display(description="rules")
    def rule_count(self, obj: PolicySet) -> int:
        return len(obj.rule_ids)

    @admin.display(description="rule ids")
    def rules(self, obj: PolicySet) -> str:
        return ", ".join(obj.rule_ids)

    @admin.display(description="files")
    def files_display(self, obj: PolicySet) -> SafeString:
        return format_html_join(
            "",
            '<h4>{}/{} <small>sha256 {}</small></h4><pre style="white-space: pre-wrap">{}</pre>',
            ((f["directory"], f["name"], f["sha256"], f.get("text", "")) for f in obj.files),
        )


@admin.register(PolicyDecision)
class PolicyDecisionAdmin(_ReadOnly, _ScopedReadAdmin):
    list_display = ["pk", "decided_at", "trigger", "model", "version", "outcome", "actor_label"]
    list_filter = ["outcome", "trigger"]
    search_fields = ["model__name", "trigger"]
    fields = [
        "trigger",
        "model",
        "version",
        "outcome",
        "decided_at",
        "actor_label",
        "policy_set_link",
        "results_display",
        "approvals_display",
        "input_sha256",
        "schema_version",
        "input_display",
        "audit_link",
    ]
    readonly_fields = fields

    def scope(self, request: HttpRequest) -> QuerySet:
        return selectors.policy_decision_list(user=request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(request).defer("input_document")

    @admin.display(description="policy set")
    def policy_set_link(self, obj: PolicyDecision) -> SafeString:
        return _admin_link(obj.policy_set, obj.policy_set_hash[:12])

    @admin.display(description="rules")
    def results_display(self, obj: PolicyDecision) -> SafeString:
        return _table(
            ["rule", "title", "effect", "outcome", "message", "references", "error"],
            [
                (
                    r.get("id", ""),
                    r.get("title", ""),
                    r.get("effect", ""),
                    r.get("outcome", ""),
                    r.get("message") or "",
                    "; ".join(r.get("references") or []),
                    r.get("error") or "",
                )
                for r in obj.results
            ],
        )

    @admin.display(description="required approvals")
    def approvals_display(self, obj: PolicyDecision) -> SafeString:
        return _approvals_table(obj.required_approvals)

    @admin.display(description="input document")
    def input_display(self, obj: PolicyDecision) -> SafeString:
        return pretty_json(obj.input_document)

    @admin.display(description="audit")
    def audit_link(self, obj: PolicyDecision) -> SafeString:
        return _audit_link(obj)
