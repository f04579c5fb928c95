from __future__ import annotations

from django.db.models import QuerySet

from audit.models import Event


def events_for_object(*, object_type: str, object_id: str | int) -> QuerySet[Event]:
    """Events about one object, oldest first."""
    return Event.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("seq")
