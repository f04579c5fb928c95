from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from governance import services
from governance.admin_utils import ServiceBackedAdmin, adopt, changed_values
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
