"""Reads of the inventory, scoped to what the actor may see.

Until object-level grants land (issue 5), the scope is: holders of the ``view_*`` model
permission see everything of that kind; anyone else sees only what they own or created.
Views, admin and commands start from these functions and never filter by hand.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from models_registry import lifecycle
from models_registry.models import Dataset, Model, ModelVersion

User = AbstractBaseUser | AnonymousUser


def model_list(*, user: User) -> QuerySet[Model]:
    qs = Model.objects.select_related("desk", "owner").with_lifecycle_status()
    if not user.is_authenticated:
        return qs.none()
    if user.has_perm("models_registry.view_model"):
        return qs
    return qs.filter(owner=user)


def model_version_list(*, user: User) -> QuerySet[ModelVersion]:
    qs = ModelVersion.objects.select_related(
        "model", "model__desk", "created_by", "training_dataset", "validation_dataset", "test_dataset"
    )
    if not user.is_authenticated:
        return qs.none()
    if user.has_perm("models_registry.view_modelversion"):
        return qs
    return qs.filter(Q(model__owner=user) | Q(created_by=user))


def dataset_list(*, user: User) -> QuerySet[Dataset]:
    qs = Dataset.objects.select_related("owner", "desk")
    if not user.is_authenticated:
        return qs.none()
    if user.has_perm("models_registry.view_dataset"):
        return qs
    return qs.filter(owner=user)


def allowed_transitions(*, version: ModelVersion) -> list[str]:
    return lifecycle.allowed_targets(version.status)
