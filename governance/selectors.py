"""Reads of the sign-off workflow and findings, scoped to what the user may see.

A user sees a sign-off request or a finding when they hold the model permission to view
that kind of record and can see the version it is about (``model_version_list``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import BooleanField, Case, Q, QuerySet, Value, When
from django.utils import timezone

from audit import canonical
from audit.snapshot import json_safe
from governance.models import Finding, PolicyDecision, SignOffRequest, SignOffResponse
from governance.roles import Role
from models_registry.models import Model, ModelVersion
from models_registry.selectors import model_version_list

User = get_user_model()
_ROLE_NAMES = frozenset(role.value for role in Role)


def user_roles(user: AbstractBaseUser) -> list[str]:
    """The role names ``user`` holds (their role groups), sorted."""
    return sorted(name for name in user.groups.values_list("name", flat=True) if name in _ROLE_NAMES)


def version_fingerprint(version: ModelVersion) -> str:
    """SHA-256 of what a sign-off is about: the version's artifact, code, parameters,
    features and its datasets' content. Anything else (status, timestamps) may change while
    a request is open; a change to these means the approvers would approve something else."""
    datasets = {
        role: None if ds is None else {"id": ds.pk, "sha256": ds.content_sha256}
        for role, ds in (
            ("training", version.training_dataset),
            ("validation", version.validation_dataset),
            ("test", version.test_dataset),
        )
    }
    content = {
        "version": version.pk,
        "label": version.version,
        "artifact_sha256": version.artifact_sha256,
        "code_repository": version.code_repository,
        "code_commit": version.code_commit,
        "hyperparameters": json_safe(version.hyperparameters),
        "feature_names": json_safe(version.feature_names),
        "datasets": datasets,
    }
    return hashlib.sha256(canonical.dumps(content)).hexdigest()


def _with_overdue(qs: QuerySet[SignOffRequest]) -> QuerySet[SignOffRequest]:
    now = timezone.now()
    return qs.annotate(
        is_overdue=Case(
            When(status__in=SignOffRequest.OPEN_STATUSES, due_at__lt=now, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


def signoff_request_list(*, user: AbstractBaseUser) -> QuerySet[SignOffRequest]:
    """Sign-off requests on versions ``user`` can see, with ``is_overdue`` annotated."""
    qs = SignOffRequest.objects.select_related("model", "version", "requested_by", "latest_decision")
    if not user.is_authenticated or not user.has_perm("governance.view_signoffrequest"):
        return _with_overdue(qs.none())
    return _with_overdue(qs.filter(version__in=model_version_list(user=user).values("pk")))


def signoff_requests_needing_attention(*, user: AbstractBaseUser) -> QuerySet[SignOffRequest]:
    """Pending, blocked and overdue requests: the compliance officer's work list."""
    qs = signoff_request_list(user=user)
    return qs.filter(Q(status__in=SignOffRequest.OPEN_STATUSES) | Q(status=SignOffRequest.Status.BLOCKED))


def current_responses(request: SignOffRequest) -> list[SignOffResponse]:
    """The responses of the request's current round, oldest first."""
    return list(request.responses.filter(round=request.round).select_related("approver").order_by("decided_at", "pk"))


def _findings_with_overdue(qs: QuerySet[Finding]) -> QuerySet[Finding]:
    """``is_overdue``: not closed and past its due date (the one definition of it)."""
    return qs.annotate(
        is_overdue=Case(
            When(~Q(status=Finding.Status.CLOSED) & Q(due_date__lt=timezone.now().date()), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


def finding_list(*, user: AbstractBaseUser) -> QuerySet[Finding]:
    """Findings on versions ``user`` can see, with ``is_overdue`` annotated."""
    qs = Finding.objects.select_related("model", "version", "remediation_owner", "raised_by", "closed_by")
    if not user.is_authenticated or not user.has_perm("governance.view_finding"):
        return _findings_with_overdue(qs.none())
    return _findings_with_overdue(qs.filter(version__in=model_version_list(user=user).values("pk")))


def policy_decision_list(*, user: AbstractBaseUser) -> QuerySet[PolicyDecision]:
    """Policy decisions on versions ``user`` can see (those holding ``view_policydecision``)."""
    qs = PolicyDecision.objects.select_related("policy_set", "version", "model")
    if not user.is_authenticated or not user.has_perm("governance.view_policydecision"):
        return qs.none()
    return qs.filter(version__in=model_version_list(user=user).values("pk"))


def is_developer(*, user: AbstractBaseUser, model: Model) -> bool:
    """The model's owner or the creator of one of its versions (as segregation of duties says)."""
    return model.owner_id == user.pk or ModelVersion.objects.filter(model=model, created_by=user).exists()


def approver_candidates(*, request: SignOffRequest, roles: set[str]) -> list[AbstractBaseUser]:
    """Active people holding one of ``roles`` who could decide ``request``: they see the
    version, did not ask for it and did not develop the model. For notifications."""
    users = (
        User.objects.filter(is_active=True, groups__name__in=sorted(roles))
        .exclude(pk=request.requested_by_id)
        .distinct()
        .order_by("username")
    )
    return [
        user
        for user in users
        if not is_developer(user=user, model=request.model)
        and model_version_list(user=user).filter(pk=request.version_id).exists()
    ]


def open_approval_roles(required_approvals: list[dict[str, Any]]) -> set[str]:
    """Roles named by approval requirements that are not yet satisfied."""
    return {role for item in required_approvals if not item.get("satisfied") for role in item["roles"]}


def all_approval_roles(required_approvals: list[dict[str, Any]]) -> set[str]:
    return {role for item in required_approvals for role in item["roles"]}


# The trading permission ------------------------------------------------------------------

_PERMISSION_KEY = "governance:trading-permission:{}"


def _permission_now(model_id: int) -> dict[str, Any]:
    from governance.models import Deployment

    deployment = (
        Deployment.objects.filter(model_id=model_id, status__in=Deployment.LIVE_STATUSES)
        .select_related("version")
        .first()
    )
    answer: dict[str, Any] = {
        "allowed": False,
        "version": None,
        "phase": None,
        "capital_limit": None,
        "currency": None,
        "instruments": [],
        "reason": "",
    }
    if deployment is None:
        return {**answer, "reason": "not deployed"}
    answer.update(
        version=deployment.version.version,
        phase=deployment.phase,
        capital_limit=str(deployment.capital_limit),
        currency=deployment.currency,
        instruments=list(deployment.instruments),
    )
    if deployment.kill_switch_engaged:
        return {**answer, "reason": f"kill switch engaged: {deployment.kill_reason}"}
    if deployment.status != Deployment.Status.ACTIVE or deployment.version.status != "deployed":
        return {**answer, "reason": f"deployment suspended (version {deployment.version.status})"}
    return {**answer, "allowed": True, "reason": f"deployed in phase {deployment.phase}"}


def trading_permission(*, model_id: int) -> dict[str, Any]:
    """What trading infrastructure may do with a model now: ``{allowed, version, phase,
    capital_limit (decimal string), currency, instruments, reason}``. Cached; every change to a
    deployment forgets the model's entry when its transaction commits."""
    from django.conf import settings
    from django.core.cache import cache

    ttl = settings.GOVERNANCE_TRADING_PERMISSION_TTL
    if not ttl:
        return _permission_now(model_id)
    key = _PERMISSION_KEY.format(model_id)
    answer = cache.get(key)
    if answer is None:
        answer = _permission_now(model_id)
        cache.set(key, answer, timeout=ttl)
    return answer


def trading_permission_key(model_id: int) -> str:
    """The cache key of a model's trading permission (read together with others in one round
    trip by governance.permission_cache)."""
    return _PERMISSION_KEY.format(model_id)


def forget_trading_permission(model_id: int) -> None:
    from django.core.cache import cache

    cache.delete(_PERMISSION_KEY.format(model_id))


def deployment_list(*, user: AbstractBaseUser) -> QuerySet[Any]:
    """Deployments of the models ``user`` can see (``model_list``), for holders of
    ``view_deployment``; latest first, with the model, version and rollback target fetched."""
    from governance.models import Deployment
    from models_registry.selectors import model_list

    qs = Deployment.objects.select_related("model", "version", "rollback_target")
    if not user.is_authenticated or not user.has_perm("governance.view_deployment"):
        return qs.none()
    return qs.filter(model__in=model_list(user=user).values("pk"))


# Monitoring ------------------------------------------------------------------------------
# Who sees a model's monitoring data: whoever may see its deployments (``view_deployment``)
# and the model itself (docs/monitoring.md).


def _monitoring_models(user: AbstractBaseUser) -> QuerySet[Any] | None:
    """The ids of the models whose monitoring data ``user`` may see; None for nobody."""
    from models_registry.selectors import model_list

    if not user.is_authenticated or not user.has_perm("governance.view_deployment"):
        return None
    return model_list(user=user).values("pk")


def monitoring_batch_list(*, user: AbstractBaseUser, model_id: int | None = None) -> QuerySet[Any]:
    """Monitoring batches of the models ``user`` may see, latest first."""
    from governance.models import MonitoringBatch

    qs = MonitoringBatch.objects.select_related("model", "deployment", "version")
    visible = _monitoring_models(user)
    if visible is None:
        return qs.none()
    if model_id is not None:
        qs = qs.filter(model_id=model_id)
    return qs.filter(model__in=visible)


def monitoring_sample_list(*, user: AbstractBaseUser, model_id: int | None = None) -> QuerySet[Any]:
    """Monitoring samples of the models ``user`` may see, in time order."""
    from governance.models import MonitoringSample

    qs = MonitoringSample.objects.all()
    visible = _monitoring_models(user)
    if visible is None:
        return qs.none()
    if model_id is not None:
        qs = qs.filter(model_id=model_id)
    return qs.filter(model__in=visible)


SERIES_COLUMNS = ("id", "at", "instrument", "predicted", "probability", "outcome", "trade_count", "pnl", "pnl_kind")


def monitoring_series(*, deployment: Any, since: datetime | None = None) -> dict[str, Any]:
    """A deployment's samples as columns (NumPy arrays) in time order, for the anomaly rules.

    Not scoped to a user: the evaluator is a system job. ``since`` keeps samples at or after
    it. Missing values: ``predicted``, ``probability``, ``outcome`` and ``pnl`` are float64
    with NaN for null (class labels are small integers, exact in a float); ``at`` is
    datetime64[us] in UTC. ``pnl`` as float is for statistics only: the exact amounts
    (``Decimal`` or None) are in ``pnl_exact``, and money compared with a limit should use them.
    """
    import numpy as np

    from governance.models import MonitoringSample

    qs = MonitoringSample.objects.filter(deployment_id=getattr(deployment, "pk", deployment))
    if since is not None:
        qs = qs.filter(at__gte=since)
    rows = list(qs.order_by("at", "pk").values_list(*SERIES_COLUMNS))
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in SERIES_COLUMNS]
    data = dict(zip(SERIES_COLUMNS, columns, strict=True))

    def floats(values: tuple[Any, ...]) -> Any:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    return {
        "id": np.array(data["id"], dtype=np.int64),
        "at": np.array([v.astimezone(UTC).replace(tzinfo=None) for v in data["at"]], dtype="datetime64[us]"),
        "instrument": np.array(data["instrument"], dtype=str),
        "predicted": floats(data["predicted"]),
        "probability": floats(data["probability"]),
        "outcome": floats(data["outcome"]),
        "trade_count": np.array(data["trade_count"], dtype=np.int64),
        "pnl": floats(data["pnl"]),
        "pnl_exact": list(data["pnl"]),
        "pnl_kind": np.array(data["pnl_kind"], dtype=str),
    }


def monitoring_alert_list(*, user: AbstractBaseUser, model_id: int | None = None) -> QuerySet[Any]:
    """Monitoring alerts (anomaly rules that fired) on the deployments ``user`` may see
    (``deployment_list``), for holders of ``view_monitoringalert``; open ones first, then
    acknowledged, then resolved, each latest first."""
    from django.db.models import Case, IntegerField, Value, When

    from governance.models import MonitoringAlert

    qs = MonitoringAlert.objects.select_related("model", "version", "deployment", "policy_decision")
    if not user.is_authenticated or not user.has_perm("governance.view_monitoringalert"):
        return qs.none()
    if model_id is not None:
        qs = qs.filter(model_id=model_id)
    rank = Case(
        When(status="open", then=Value(0)),
        When(status="acknowledged", then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    visible = deployment_list(user=user).values("pk")
    return qs.filter(deployment__in=visible).annotate(status_rank=rank).order_by("status_rank", "-raised_at", "-pk")


def report_list(*, user: AbstractBaseUser) -> QuerySet[Any]:
    """Reports ``user`` may see, latest first (docs/reports.md).

    With ``view_report``: reports on the models (and their versions) the inventory selectors
    let them see, the reports they requested, and, for those who see the whole audit log,
    reports on no single model. A regulator (no permission) sees only issued reports on the
    models an engagement shares with them now. Anyone else: nothing.
    """
    from audit.selectors import sees_all_events
    from governance.models import Report, ReportStatus
    from models_registry.selectors import model_list

    qs = Report.objects.select_related("model", "version", "requested_by", "checkpoint")
    if not user.is_authenticated:
        return qs.none()
    if user.is_superuser:
        return qs
    visible_models = model_list(user=user).values("pk")
    if user.has_perm("governance.view_report"):
        scope = Q(model__in=visible_models) | Q(requested_by=user)
        if sees_all_events(user=user):
            scope |= Q(model__isnull=True)
        return qs.filter(scope)
    if user.groups.filter(name=Role.REGULATOR.value).exists():
        return qs.filter(status=ReportStatus.SUCCEEDED, model__in=visible_models)
    return qs.none()
