from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet

from audit import selectors
from audit.models import Event


class _IntegerFilter(django_filters.NumberFilter):
    # NumberFilter accepts decimals; a sequence number is a whole number.
    field_class = forms.IntegerField


class EventFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        method="filter_actor",
        label="Actor: a user id, or a label (a username, or a system actor such as system:demo).",
    )
    seq_min = _IntegerFilter(
        field_name="seq", lookup_expr="gte", label="Events from this seq on (inclusive).", max_value=selectors.MAX_ID
    )
    seq_max = _IntegerFilter(
        field_name="seq", lookup_expr="lte", label="Events up to this seq (inclusive).", max_value=selectors.MAX_ID
    )
    timestamp_after = django_filters.IsoDateTimeFilter(
        field_name="timestamp", lookup_expr="gte", label="Events at or after this time (ISO 8601)."
    )
    timestamp_before = django_filters.IsoDateTimeFilter(
        field_name="timestamp", lookup_expr="lte", label="Events at or before this time (ISO 8601)."
    )

    class Meta:
        model = Event
        fields = ["action", "object_type", "object_id"]

    def filter_actor(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return queryset.filter(selectors.actor_condition(value))
