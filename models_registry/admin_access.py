"""Admin pages for access: object grants, validator assignments and regulators' engagements.

Every save and delete goes through the access services, which check who may share what,
apply segregation of duties and write the audit events.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from governance import services as org_services
from governance.admin_utils import ServiceBackedAdmin, adopt
from governance.models import DeskGrant
from models_registry import selectors, services
from models_registry.models import DatasetGrant, Engagement, Model, ModelGrant


class _GrantForm(forms.ModelForm):
    """Pick who, what and which permission; the service creates the guardian row."""

    grant_permission = forms.ChoiceField(label="permission")

    class Meta:
        fields = ["user", "content_object"]


class _GrantAdmin(ServiceBackedAdmin):
    form = _GrantForm
    fields = ["user", "content_object", "grant_permission"]
    list_display = ["user", "permission", "content_object"]
    list_select_related = ["user", "permission", "content_object"]
    search_fields = ["user__username", "content_object__name"]
    choices: tuple[tuple[str, str], ...] = ()

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["grant_permission"].choices = self.choices
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a grant is added or revoked, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.revoke(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for grant in queryset.select_related("permission", "user", "content_object"):
            self.revoke(request, grant)

    def revoke(self, request: HttpRequest, grant: Any) -> None:
        raise NotImplementedError

    def shareable(self, request: HttpRequest) -> QuerySet | None:
        """The objects the user may grant on (from the selectors); None: the default choices."""
        return None

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "content_object" and (shareable := self.shareable(request)) is not None:
            kwargs["queryset"] = shareable
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(ModelGrant)
class ModelGrantAdmin(_GrantAdmin):
    choices = (
        ("view_model", "see the model"),
        ("change_model", "change the model"),
        ("validate_model", "validate the model (assign as validator)"),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        visible = selectors.model_list(user=request.user).values("pk")
        return super().get_queryset(request).filter(content_object__in=visible)

    def shareable(self, request: HttpRequest) -> QuerySet:
        return selectors.model_share_list(user=request.user)

    def save_model(self, request: HttpRequest, obj: ModelGrant, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if data["grant_permission"] == "validate_model":
            grant = services.validation_assign(actor=request.user, model=data["content_object"], validator=data["user"])
        else:
            grant = services.model_access_grant(
                actor=request.user, user=data["user"], model=data["content_object"], permission=data["grant_permission"]
            )
        adopt(obj, grant)

    def revoke(self, request: HttpRequest, grant: ModelGrant) -> None:
        services.model_access_revoke(
            actor=request.user, user=grant.user, model=grant.content_object, permission=grant.permission.codename
        )


@admin.register(DatasetGrant)
class DatasetGrantAdmin(_GrantAdmin):
    choices = (("view_dataset", "see the dataset"), ("change_dataset", "change the dataset"))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        visible = selectors.dataset_list(user=request.user).values("pk")
        return super().get_queryset(request).filter(content_object__in=visible)

    def shareable(self, request: HttpRequest) -> QuerySet:
        return selectors.dataset_share_list(user=request.user)

    def save_model(self, request: HttpRequest, obj: DatasetGrant, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        grant = services.dataset_access_grant(
            actor=request.user, user=data["user"], dataset=data["content_object"], permission=data["grant_permission"]
        )
        adopt(obj, grant)

    def revoke(self, request: HttpRequest, grant: DatasetGrant) -> None:
        services.dataset_access_revoke(
            actor=request.user, user=grant.user, dataset=grant.content_object, permission=grant.permission.codename
        )


@admin.register(DeskGrant)
class DeskGrantAdmin(_GrantAdmin):
    choices = (("view_desk_models", "see the desk's models"), ("change_desk_models", "change the desk's models"))

    def save_model(self, request: HttpRequest, obj: DeskGrant, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        grant = org_services.desk_access_grant(
            actor=request.user, user=data["user"], desk=data["content_object"], permission=data["grant_permission"]
        )
        adopt(obj, grant)

    def revoke(self, request: HttpRequest, grant: DeskGrant) -> None:
        org_services.desk_access_revoke(
            actor=request.user, user=grant.user, desk=grant.content_object, permission=grant.permission.codename
        )


class EngagementForm(forms.ModelForm):
    shared = forms.ModelMultipleChoiceField(queryset=Model.objects.none(), label="models shared")
    revocation_reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Fill in to end the engagement now."
    )

    class Meta:
        model = Engagement
        fields = ["regulator", "authority", "purpose", "starts_at", "ends_at"]


@admin.register(Engagement)
class EngagementAdmin(ServiceBackedAdmin):
    """Compliance shares models with a regulator for a bounded time, and ends it."""

    form = EngagementForm
    list_display = ["authority", "regulator", "starts_at", "ends_at", "revoked_at", "created_by"]
    list_filter = ["authority"]
    list_select_related = ["regulator", "created_by"]
    readonly_fields = ["revoked_at", "created_by", "created_at"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["shared"].queryset = selectors.model_list(user=request.user)
        if obj is not None:
            form.base_fields["shared"].initial = list(obj.shared_models.values_list("pk", flat=True))
            form.base_fields["shared"].disabled = True
            for name in ("regulator", "authority", "purpose", "starts_at", "ends_at"):
                form.base_fields[name].disabled = True
        else:
            del form.base_fields["revocation_reason"]
        return form

    def save_model(self, request: HttpRequest, obj: Engagement, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            if data.get("revocation_reason", "").strip():
                adopt(
                    obj,
                    services.engagement_revoke(actor=request.user, engagement=obj, reason=data["revocation_reason"]),
                )
            return
        engagement = services.engagement_create(
            actor=request.user,
            regulator=data["regulator"],
            authority=data["authority"],
            purpose=data["purpose"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            models=list(data["shared"]),
        )
        adopt(obj, engagement)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        pass  # the service wrote the shared models
