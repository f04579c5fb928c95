"""Where an event's object lives: its API resource and its admin page, from ``object_type`` alone.

Events name their object as ``<app_label>.<model_name>`` (``Model._meta.label_lower``,
set by ``audit.services.record_event``) and its primary key as text. Links are built
with ``reverse()`` from those two columns, so a page of events costs no query per row.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.db import models
from django.urls import NoReverseMatch, reverse

# Object types with an API resource, and the route name of its detail view
# (models_registry/api/urls.py registers them under these basenames).
API_DETAIL_ROUTES: dict[str, str] = {
    "models_registry.model": "model-detail",
    "models_registry.modelversion": "modelversion-detail",
    "models_registry.dataset": "dataset-detail",
}


def api_path(object_type: str, object_id: str) -> str | None:
    """Path of the object's API resource, or ``None`` when its kind has none."""
    route = API_DETAIL_ROUTES.get(object_type)
    if route is None or not object_id:
        return None
    try:
        return reverse(route, args=[object_id])
    except NoReverseMatch:  # an id the route's pattern refuses
        return None


def model_for(object_type: str) -> type[models.Model] | None:
    """The model class an object type names, or ``None`` (e.g. ``audit.checkpoint`` events with no id)."""
    app_label, _, model_name = object_type.partition(".")
    if not model_name:
        return None
    try:
        return apps.get_model(app_label, model_name)
    except LookupError:
        return None


def admin_models(site: admin.AdminSite, object_types: set[str]) -> dict[str, type[models.Model]]:
    """Object types that have a change page on ``site``, with their model classes."""
    found = {}
    for object_type in object_types:
        model = model_for(object_type)
        if model is not None and site.is_registered(model):
            found[object_type] = model
    return found


def admin_change_path(site: admin.AdminSite, model: type[models.Model], object_id: str) -> str | None:
    opts = model._meta
    try:
        return reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_change", args=[object_id])
    except NoReverseMatch:
        return None
