"""Query-string filters of the sign-off, findings and policy-decision API.

They narrow querysets the selectors have already scoped. Filters naming a model or version
by id take their choices from the selectors, so an object the caller cannot see is refused
like one that does not exist (no existence oracle).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from governance.models import Finding, PolicyDecision, SignOffRequest
from models_registry import selectors as registry_selectors
from models_registry.choices import LifecycleStatus
from models_registry.models import Model, ModelVersion


def _visible_models(request: Any) -> QuerySet[Model]:
    if request is None:  # schema generation
        return Model.objects.none()
    return registry_selectors.model_list(user=request.user)


def _visible_versions(request: Any) -> QuerySet[ModelVersion]:
    if request is None:
        return ModelVersion.objects.none()
    return registry_selectors.model_version_list(user=request.user)


class _ScopedRelations(django_filters.FilterSet):
    model = django_filters.ModelChoiceFilter(queryset=_visible_models)
    version = django_filters.ModelChoiceFilter(queryset=_visible_versions)


class SignOffRequestFilterSet(_ScopedRelations):
    status = django_filters.MultipleChoiceFilter(choices=SignOffRequest.Status.choices)
    to_status = django_filters.ChoiceFilter(choices=LifecycleStatus.choices)
    overdue = django_filters.BooleanFilter(
        field_name="is_overdue", label="Open and past its due date (true) or not (false)."
    )

    class Meta:
        model = SignOffRequest
        fields = ["status", "to_status", "model", "version", "overdue"]


class FindingFilterSet(_ScopedRelations):
    status = django_filters.MultipleChoiceFilter(choices=Finding.Status.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Finding.Severity.choices)
    overdue = django_filters.BooleanFilter(field_name="is_overdue", label="Not closed and past its due date.")

    class Meta:
        model = Finding
        fields = ["status", "severity", "model", "version", "overdue"]


class PolicyDecisionFilterSet(_ScopedRelations):
    outcome = django_filters.ChoiceFilter(choices=PolicyDecision.Outcome.choices)
    trigger = django_filters.CharFilter()

    class Meta:
        model = PolicyDecision
        fields = ["model", "version", "trigger", "outcome"]
