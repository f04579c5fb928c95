"""Query-string filters of the inventory API.

They narrow a queryset the selectors have already scoped. A filter that names another object
by id takes its choices from the selectors too, so an object the caller cannot see is refused
exactly like one that does not exist ("Select a valid choice"): no existence oracle. Filters by
name or code (desk, owner, model name) only narrow the scoped rows and answer empty instead.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from models_registry import selectors
from models_registry.choices import LifecycleStatus
from models_registry.models import AssessmentKind, AssessmentStatus, Dataset, Model, ModelVersion, RiskAssessment


def _visible_versions(request: Any) -> QuerySet[ModelVersion]:
    if request is None:
        return ModelVersion.objects.none()
    return selectors.model_version_list(user=request.user)


def _visible_models(request: Any) -> QuerySet[Model]:
    # No request (schema generation): no choices.
    if request is None:
        return Model.objects.none()
    return selectors.model_list(user=request.user)


class ModelFilterSet(django_filters.FilterSet):
    desk = django_filters.CharFilter(field_name="desk__code")
    owner = django_filters.CharFilter(field_name="owner__username")
    status = django_filters.ChoiceFilter(field_name="lifecycle_status", choices=LifecycleStatus.choices)

    class Meta:
        model = Model
        fields = ["purpose", "risk_tier", "model_type", "desk", "owner", "status"]


class ModelVersionFilterSet(django_filters.FilterSet):
    model = django_filters.ModelChoiceFilter(queryset=_visible_models)
    model_name = django_filters.CharFilter(field_name="model__name")

    class Meta:
        model = ModelVersion
        fields = ["model", "model_name", "status"]


class DatasetFilterSet(django_filters.FilterSet):
    class Meta:
        model = Dataset
        fields = ["classification", "source_kind", "validation_status"]


class AssessmentFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AssessmentStatus.choices)
    kind = django_filters.ChoiceFilter(choices=AssessmentKind.choices)
    rating = django_filters.ChoiceFilter(
        choices=[*RiskAssessment._meta.get_field("rating").choices, ("none", "Not rated")],
        method="filter_rating",
        help_text="green, amber, red, or none (not rated).",
    )
    version = django_filters.ModelChoiceFilter(queryset=_visible_versions)
    model = django_filters.ModelChoiceFilter(queryset=_visible_models)

    class Meta:
        model = RiskAssessment
        fields = ["status", "kind", "rating", "version", "model"]

    def filter_rating(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(rating__isnull=True) if value == "none" else queryset.filter(rating=value)
