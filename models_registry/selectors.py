"""Reads of the inventory, scoped to what the actor may see. The one place scope is decided.

Who sees which model (and its versions):

* oversight roles (``oversee_model``: compliance, internal audit, risk, administrators)
  and superusers: every model;
* the model's owner, and whoever created one of its versions;
* a user with an object grant on the model (django-guardian, ``ModelGrant``): a view,
  change or validation grant (validators are assigned this way);
* a user with a grant on the model's desk (``view_desk_models`` or ``change_desk_models`` on a
  ``DeskGrant``; changing needs the latter);
* a regulator with an engagement covering the model, between its start and end and
  while not revoked.

Datasets by classification: public and internal to staff holding ``view_dataset``;
confidential to members of its desk, oversight roles and grantees; restricted only to
its owner and explicit grantees. Owners always see their own.

Each list is one SQL query with the scope as subqueries (no per-row permission checks),
so views, admin and commands start from these functions and never filter by hand.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.utils import timezone

from governance.models import Desk
from models_registry import lifecycle
from models_registry.choices import Classification
from models_registry.models import (
    Dataset,
    EngagementModel,
    Model,
    ModelVersion,
    PostModelAdjustment,
    PostModelAdjustmentQuerySet,
    RiskAssessment,
)

User = AbstractBaseUser | AnonymousUser

MODEL_VIEW_GRANTS = ("view_model", "change_model", "validate_model")
MODEL_CHANGE_GRANTS = ("change_model",)
DESK_VIEW_GRANTS = ("view_desk_models", "change_desk_models")
DESK_CHANGE_GRANTS = ("change_desk_models",)
DATASET_VIEW_GRANTS = ("view_dataset", "change_dataset")
DATASET_CHANGE_GRANTS = ("change_dataset",)


def _granted(user: AbstractBaseUser, codenames: tuple[str, ...], klass: type) -> QuerySet:
    """Primary keys of ``klass`` rows on which ``user`` holds any of ``codenames`` as an object
    grant of their own (not through a group, and a global permission does not count).

    Reads the grant table (``klass.grants``: django-guardian's direct foreign-key object
    permissions) itself: the subquery is the one guardian's ``get_objects_for_user(...,
    any_perm=True, use_groups=False, with_superuser=False, accept_global_perms=False)`` builds,
    without the millisecond of Python that took on every scoped read (the trading permission
    pays it on each call; docs/benchmarks.md)."""
    grants = klass._meta.get_field("grants").related_model
    return grants.objects.filter(
        user=user,
        permission__content_type=ContentType.objects.get_for_model(klass),
        permission__codename__in=codenames,
    ).values("content_object_id")


def _active_engagement_models(user: AbstractBaseUser) -> QuerySet:
    now = timezone.now()
    return EngagementModel.objects.filter(
        engagement__regulator=user,
        engagement__starts_at__lte=now,
        engagement__ends_at__gt=now,
        engagement__revoked_at__isnull=True,
    ).values("model_id")


def _model_scope(user: AbstractBaseUser, *, for_change: bool) -> Q | None:
    """The condition on Model rows for ``user``; None means every row."""
    if user.is_superuser or (not for_change and user.has_perm("models_registry.oversee_model")):
        return None
    scope = (
        Q(owner=user)
        | Q(pk__in=_granted(user, MODEL_CHANGE_GRANTS if for_change else MODEL_VIEW_GRANTS, Model))
        | Q(desk__in=_granted(user, DESK_CHANGE_GRANTS if for_change else DESK_VIEW_GRANTS, Desk))
    )
    if not for_change:
        scope |= Q(pk__in=ModelVersion.objects.filter(created_by=user).values("model_id"))
        scope |= Q(pk__in=_active_engagement_models(user))
    return scope


def model_list(*, user: User, for_change: bool = False) -> QuerySet[Model]:
    """Models ``user`` may see (or, with ``for_change``, change)."""
    qs = Model.objects.select_related("desk", "owner").with_lifecycle_status()
    if not user.is_authenticated:
        return qs.none()
    scope = _model_scope(user, for_change=for_change)
    return qs if scope is None else qs.filter(scope)


def model_version_list(*, user: User, for_change: bool = False) -> QuerySet[ModelVersion]:
    """Versions of the models ``user`` may see (or change).

    A version's author sees it through its model (the model scope includes the models they
    created versions of), but changes it only while they may change the model: revoking
    the change grant ends that at once.
    """
    qs = ModelVersion.objects.select_related(
        "model", "model__desk", "created_by", "training_dataset", "validation_dataset", "test_dataset"
    )
    if not user.is_authenticated:
        return qs.none()
    scope = _model_scope(user, for_change=for_change)
    if scope is None:
        return qs
    models_in_scope = Model.objects.filter(scope).values("pk")
    return qs.filter(model__in=models_in_scope)


def assessment_list(*, user: User) -> QuerySet[RiskAssessment]:
    """Risk assessments of the versions ``user`` may see, for holders of ``view_riskassessment``."""
    qs = RiskAssessment.objects.select_related("model", "version", "requested_by")
    if not user.is_authenticated or not user.has_perm("models_registry.view_riskassessment"):
        return qs.none()
    scope = _model_scope(user, for_change=False)
    if scope is None:
        return qs
    return qs.filter(model__in=Model.objects.filter(scope).values("pk"))


def adjustment_list(*, user: User) -> PostModelAdjustmentQuerySet:
    """Post-model adjustments on the versions ``user`` may see, for holders of
    ``view_postmodeladjustment`` (scoped as findings are), with ``status`` annotated as at now."""
    qs = PostModelAdjustment.objects.select_related("model", "version", "approved_by").with_status()
    if not user.is_authenticated or not user.has_perm("models_registry.view_postmodeladjustment"):
        return qs.none()
    scope = _model_scope(user, for_change=False)
    if scope is None:
        return qs
    return qs.filter(model__in=Model.objects.filter(scope).values("pk"))


def user_desk_id(user: AbstractBaseUser) -> int | None:
    membership = getattr(user, "membership", None) if user.is_authenticated else None
    return membership.desk_id if membership is not None else None


def dataset_list(*, user: User, for_change: bool = False) -> QuerySet[Dataset]:
    """Datasets ``user`` may see (or change), by classification, desk, grant and ownership."""
    qs = Dataset.objects.select_related("owner", "desk")
    if not user.is_authenticated:
        return qs.none()
    if user.is_superuser:
        return qs
    granted = Q(pk__in=_granted(user, DATASET_CHANGE_GRANTS if for_change else DATASET_VIEW_GRANTS, Dataset))
    scope = Q(owner=user) | granted
    if not for_change:
        if user.has_perm("models_registry.view_dataset"):
            scope |= Q(classification__in=[Classification.PUBLIC, Classification.INTERNAL])
        confidential = Q(classification=Classification.CONFIDENTIAL)
        if user.has_perm("models_registry.oversee_dataset"):
            scope |= confidential
        elif (desk_id := user_desk_id(user)) is not None:
            scope |= confidential & Q(desk_id=desk_id)
    return qs.filter(scope)


def is_administrator(user: User) -> bool:
    """Superusers and administrators (who manage users, ``auth.change_user``): they may share
    anything and make objects over to other owners."""
    return user.is_authenticated and (user.is_superuser or user.has_perm("auth.change_user"))


def model_share_list(*, user: User) -> QuerySet[Model]:
    """Models ``user`` may share or unshare with a grant: their own, every model for administrators,
    and (to assign validators) the models they see if they hold ``assign_validator``."""
    if is_administrator(user):
        return Model.objects.select_related("desk", "owner")
    qs = model_list(user=user)
    return qs if user.has_perm("models_registry.assign_validator") else qs.filter(owner=user)


def dataset_share_list(*, user: User) -> QuerySet[Dataset]:
    """Datasets ``user`` may share or unshare: their own, every dataset for administrators."""
    qs = Dataset.objects.select_related("owner", "desk")
    if is_administrator(user):
        return qs
    return qs.filter(owner=user) if user.is_authenticated else qs.none()


def can_change_model(*, user: User, model: Model) -> bool:
    return model_list(user=user, for_change=True).filter(pk=model.pk).exists()


def can_register_model_on(*, user: User, desk: Desk) -> bool:
    """Whether ``user`` may put a new model on ``desk``: their own desk (``Membership``), a desk
    they hold ``change_desk_models`` on, or any desk for administrators. A model on a desk is
    shared with everyone granted that desk, so nobody places models on desks that are not theirs."""
    if not user.is_authenticated:
        return False
    if is_administrator(user) or user_desk_id(user) == desk.pk:
        return True
    return Desk.objects.filter(pk=desk.pk, pk__in=_granted(user, DESK_CHANGE_GRANTS, Desk)).exists()


def can_validate(*, user: User, model: Model) -> bool:
    """An assigned validator: holds the ``validate_model`` grant on this model."""
    if not user.is_authenticated:
        return False
    return Model.objects.filter(pk=model.pk, pk__in=_granted(user, ("validate_model",), Model)).exists()


def allowed_transitions(*, version: ModelVersion) -> list[str]:
    return lifecycle.allowed_targets(version.status)
