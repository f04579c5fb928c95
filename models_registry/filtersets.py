from __future__ import annotations

import django_filters

from models_registry.choices import LifecycleStatus
from models_registry.models import Dataset, Model, ModelVersion


class ModelFilterSet(django_filters.FilterSet):
    desk = django_filters.CharFilter(field_name="desk__code")
    owner = django_filters.CharFilter(field_name="owner__username")
    status = django_filters.ChoiceFilter(field_name="lifecycle_status", choices=LifecycleStatus.choices)

    class Meta:
        model = Model
        fields = ["purpose", "risk_tier", "model_type", "desk", "owner", "status"]


class ModelVersionFilterSet(django_filters.FilterSet):
    model_name = django_filters.CharFilter(field_name="model__name")

    class Meta:
        model = ModelVersion
        fields = ["model", "model_name", "status"]


class DatasetFilterSet(django_filters.FilterSet):
    class Meta:
        model = Dataset
        fields = ["classification", "source_kind", "validation_status"]
