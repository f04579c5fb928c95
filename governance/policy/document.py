"""The input document: everything the rules may read about one model version, as JSON.

A selector: it reads and never writes. ``build_input_document`` serves one evaluation;
``version_documents`` builds the documents of many versions in a fixed number of queries
(for impact analysis over the whole inventory). The schema is documented and versioned in
docs/policies.md; ``SCHEMA_VERSION`` changes whenever a field is removed or changes
meaning (adding a field does not break rules, but is documented too).

Schema version 1 reserves sections that later parts of the system fill: the latest risk
assessment (``risk_assessment``: the version's latest succeeded full assessment, or null), the
sign-off request being decided (``signoff``: null unless the sign-off workflow passes it) and
the proposed deployment (``deployment``: null unless passed). Their shape is fixed here, so that rules can
be written against it; a caller that has such data passes it in and it is validated against
that shape. ``findings`` holds the version's validation findings from the database
(``governance.models.Finding``), unless a caller passes its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic import ValidationError as PydanticValidationError

from audit import canonical
from audit.hashing import format_timestamp
from audit.models import Event
from audit.services import Actor, SystemActor
from audit.snapshot import json_safe
from governance.models import Deployment as DeploymentRow
from governance.models import Finding as FindingRow
from governance.models import MonitoringAlert, MonitoringSample
from governance.policy import triggers
from governance.policy.schema import describe_errors
from governance.roles import Role
from models_registry import lifecycle
from models_registry.models import Dataset, ModelGrant, ModelVersion
from models_registry.models import RiskAssessment as RiskAssessmentRow

SCHEMA_VERSION = 1
DATASET_ROLES = ("training", "validation", "test")
# Lifecycle steps whose latest occurrence (who, when) the document carries, from the audit log.
_HISTORY_ACTIONS = {
    "model_version.submit_for_validation": "submitted",
    "model_version.validate": "validated",
    "model_version.reject": "rejected",
    "model_version.approve": "approved",
    "model_version.deploy": "deployed",
}
_VERSION_TYPE = ModelVersion._meta.label_lower
_ROLE_NAMES = frozenset(role.value for role in Role)
_IN_CHUNK = 900  # ids per IN (...) list: well below SQLite's variable limit


def _ts(value: dt.datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


Timestamp = Annotated[AwareDatetime, PlainSerializer(format_timestamp, return_type=str)]
Money = Annotated[Decimal, PlainSerializer(lambda value: str(value), return_type=str)]


# Reserved sections (schema version 1): filled by later issues or passed in by callers. ----


class _Section(BaseModel):
    # Text is trimmed: rules test for text with size() > 0.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Overfitting(_Section):
    passed: bool
    method: str
    details: dict[str, Any] = Field(default_factory=dict)


class Explainability(_Section):
    method: str
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)


class RiskAssessment(_Section):
    """The latest completed risk assessment of the version. ``metrics`` by name, e.g.
    accuracy, precision, recall (fractions), total_return (fraction), sharpe_ratio,
    max_drawdown (a positive fraction: 0.2 is a 20% drawdown)."""

    id: str | int | None = None
    completed_at: Timestamp
    metrics: dict[str, float | int] = Field(default_factory=dict)
    overfitting: Overfitting | None = None
    explainability: Explainability | None = None


class Finding(_Section):
    id: str | int
    severity: Literal["low", "medium", "high", "critical"]
    status: Literal["open", "in_remediation", "closed"]
    title: str
    due_date: str | None = None


class Person(_Section):
    id: int | None
    username: str
    roles: list[str] = Field(default_factory=list)


class Approval(_Section):
    user_id: int
    username: str
    roles: list[str]
    decided_at: Timestamp


class Signoff(_Section):
    """The sign-off request being decided: who asked, why, and the approvals so far."""

    id: str | int | None = None
    transition: str
    requested_by: Person
    justification: str = ""
    evidence: list[str] = Field(default_factory=list)
    submitted_at: Timestamp
    approvals: list[Approval] = Field(default_factory=list)


class RollbackTarget(_Section):
    version_id: int
    label: str


class Deployment(_Section):
    """The proposed deployment (phase) with its limits. ``capital_limit`` is a decimal string."""

    phase: str
    capital_limit: Money | None = None
    currency: str = Field(default_factory=lambda: settings.GOVERNANCE_BASE_CURRENCY)
    instruments: list[str] = Field(default_factory=list)
    max_daily_loss: Money | None = None
    rollback_target: RollbackTarget | None = None
    rollback_plan: str = ""
    # Per-model overrides of the anomaly rules' parameters (checked by the sign-off service).
    monitoring_parameters: dict[str, Any] = Field(default_factory=dict)


class MonitoredDeployment(_Section):
    """The deployment whose live data the anomaly rules read."""

    id: int
    phase: str
    capital_limit: Money
    max_daily_loss: Money | None = None
    currency: str
    started_at: Timestamp


class MonitoringDetection(_Section):
    """One detector's result (``governance.detectors``) over its window of samples."""

    computed: bool
    breached: bool
    statistic: float | None = None
    threshold: float | None = None
    at: Timestamp | None = None
    window_from: Timestamp | None = None
    window_to: Timestamp | None = None
    samples: int = 0
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


class Monitoring(_Section):
    """The anomaly detections on a deployment's live samples (trigger ``monitoring``), with the
    parameters they used (the set's ``monitoring`` defaults merged with the deployment's overrides)."""

    deployment: MonitoredDeployment
    samples: int
    window_from: Timestamp | None = None
    window_to: Timestamp | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    detections: dict[str, MonitoringDetection]


_RESERVED: dict[str, type[_Section]] = {
    "risk_assessment": RiskAssessment,
    "signoff": Signoff,
    "deployment": Deployment,
    "monitoring": Monitoring,
}


def _reserved(name: str, value: Any) -> Any:
    """Validate a caller-supplied reserved section against its schema-1 shape."""
    try:
        if name == "findings":
            return [Finding.model_validate(item).model_dump(mode="json") for item in value or []]
        if value is None:
            return None
        return _RESERVED[name].model_validate(value).model_dump(mode="json")
    except PydanticValidationError as exc:
        raise ValidationError({name: describe_errors(exc)}) from exc


def validate_section(name: str, value: Any) -> Any:
    """A reserved section (``risk_assessment``, ``findings``, ``signoff``, ``deployment``, ``monitoring``)
    checked against its schema-1 shape and normalised; ``ValidationError`` names the field."""
    return _reserved(name, value)


# The document ------------------------------------------------------------------------


def requester(actor: Actor) -> dict[str, Any]:
    """``requested_by``: who asks for the evaluation (the person doing the transition)."""
    if isinstance(actor, SystemActor):
        return {"id": None, "username": actor.label, "roles": [], "is_system": True}
    roles = sorted(name for name in actor.groups.values_list("name", flat=True) if name in _ROLE_NAMES)
    return {"id": actor.pk, "username": actor.get_username(), "roles": roles, "is_system": False}


def _user(user_id: int | None, username: str | None) -> dict[str, Any] | None:
    return None if user_id is None else {"id": user_id, "username": username}


def _dataset(dataset: Dataset | None) -> dict[str, Any] | None:
    if dataset is None:
        return None
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "sha256": dataset.content_sha256,
        "classification": dataset.classification,
        "source_kind": dataset.source_kind,
        "validation_status": dataset.validation_status,
        "validated_at": _ts(dataset.validated_at),
        "time_start": _ts(dataset.time_start),
        "time_end": _ts(dataset.time_end),
        "row_count": dataset.row_count,
        "owner_id": dataset.owner_id,
        "desk": dataset.desk.code if dataset.desk_id else None,
    }


def _data_split(datasets: Mapping[str, Dataset | None]) -> dict[str, Any]:
    present = {role: ds for role, ds in datasets.items() if ds is not None}
    known = bool(present) and all(ds.time_start is not None and ds.time_end is not None for ds in present.values())
    overlaps = []
    if known:
        roles = [role for role in DATASET_ROLES if role in present]
        for i, first in enumerate(roles):
            for second in roles[i + 1 :]:
                a, b = present[first], present[second]
                # Closed intervals: a shared day is already a leak between the sets.
                if a.time_start <= b.time_end and b.time_start <= a.time_end:
                    overlaps.append(
                        {
                            "between": [first, second],
                            "from": _ts(max(a.time_start, b.time_start)),
                            "to": _ts(min(a.time_end, b.time_end)),
                        }
                    )
    complete = len(present) == len(DATASET_ROLES)
    chronological = (
        complete
        and known
        and present["training"].time_end < present["validation"].time_start
        and present["validation"].time_end < present["test"].time_start
    )
    return {
        "registered": [role for role in DATASET_ROLES if role in present],
        "complete": complete,
        "all_validated": complete and all(ds.validation_status == "passed" for ds in present.values()),
        "time_ranges_known": complete and known,
        "overlaps": overlaps,
        "non_overlapping": complete and known and not overlaps,
        "chronological": chronological,
    }


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _base_document(
    version: ModelVersion,
    *,
    developers: list[dict[str, Any]],
    validators: list[int],
    history: dict[str, dict[str, Any]],
    findings: list[dict[str, Any]],
    latest_assessment: dict[str, Any] | None,
    deployment_facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model = version.model
    assessment = model.tier_assessment
    datasets = {
        "training": version.training_dataset,
        "validation": version.validation_dataset,
        "test": version.test_dataset,
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "id": model.pk,
            "name": model.name,
            "purpose": model.purpose,
            "model_type": model.model_type,
            "complexity": str(assessment.complexity),
            "risk_tier": model.risk_tier,
            "computed_risk_tier": assessment.tier,
            "tier_override": None
            if model.risk_tier_override is None
            else {"tier": model.risk_tier_override, "justification": model.risk_tier_override_justification},
            "materiality": str(model.materiality),
            "materiality_band": str(assessment.materiality),
            "currency": settings.GOVERNANCE_BASE_CURRENCY,
            "desk": model.desk.code,
            "owner_id": model.owner_id,
            # Trimmed, so that rules test for text with size() > 0 (a regex per check costs more).
            "problem_definition": {
                "objectives": model.objectives.strip(),
                "success_criteria": model.success_criteria.strip(),
                "constraints": model.constraints.strip(),
            },
            "created_at": _ts(model.created_at),
        },
        "version": {
            "id": version.pk,
            "label": version.version,
            "created_at": _ts(version.created_at),
            "created_by": _user(version.created_by_id, version.created_by.get_username()),
            "artifact": {
                "sha256": version.artifact_sha256,
                "size": version.artifact_size,
                "format": version.artifact_format,
                "estimator_class": version.estimator_class,
            },
            "framework": version.framework,
            "code_repository": version.code_repository,
            "code_commit": version.code_commit,
            "n_features": version.n_features,
            "feature_names": json_safe(version.feature_names),
            "hyperparameters": json_safe(version.hyperparameters),
        },
        "lifecycle": {
            "status": version.status,
            "status_changed_at": _ts(version.status_changed_at),
            "allowed_next": lifecycle.allowed_targets(version.status),
            **{step: history.get(step) for step in _HISTORY_ACTIONS.values()},
        },
        "datasets": {role: _dataset(ds) for role, ds in datasets.items()},
        "data_split": _data_split(datasets),
        "people": {
            "owner": _user(model.owner_id, model.owner.get_username()),
            "developers": developers,
            "developer_ids": [person["id"] for person in developers],
            "assigned_validator_ids": validators,
        },
        # Reserved in schema version 1 (see the module docstring).
        "risk_assessment": latest_assessment,
        "findings": findings,
        "monitoring": None,
        "signoff": None,
        "deployment": None,
        # The model's deployments as they are (docs/deployments.md, "Phase rules").
        **(deployment_facts or {"live_deployment": None, "rollback_candidates": []}),
    }


# Versions a rollback may return to: the rollback service deploys an approved or suspended
# version, and a deployed one is suspended when the version being deployed replaces it.
_ROLLBACK_STATUSES = ("approved", "deployed", "suspended")


_CENT = Decimal("0.01")


def _add_phase_pnl(live: dict[int, dict[str, Any]]) -> None:
    """Fill ``phase_pnl`` of live deployments (by id) from their monitoring samples since
    their phase began: sample count, days with P&L, total, and the worst day (UTC) with its
    loss (a positive decimal string, ``"0"`` when no day lost). One query."""
    if not live:
        return
    days = (
        MonitoringSample.objects.filter(deployment_id__in=list(live), at__gte=F("deployment__phase_started_at"))
        .annotate(day=TruncDate("at", tzinfo=dt.UTC))
        .values("deployment_id", "day")
        .annotate(samples=Count("pk"), pnl=Sum("pnl"))
        .order_by("deployment_id", "day")
    )
    for row in days:
        facts = live[row["deployment_id"]]["phase_pnl"]
        pnl = row["pnl"]
        facts["samples"] += row["samples"]
        if pnl is None:
            continue  # samples without P&L (predictions only)
        pnl = pnl.quantize(_CENT)  # a sum of cents (SQLite's sum carries more digits)
        facts["days"] += 1
        facts["total"] = str(Decimal(facts["total"]) + pnl)
        if -pnl > Decimal(facts["worst_day_loss"]):
            facts["worst_day"], facts["worst_day_loss"] = row["day"].isoformat(), str(-pnl)


def _add_unresolved_alerts(live: dict[int, dict[str, Any]]) -> None:
    """Fill ``unresolved_alerts`` (open or acknowledged) of live deployments (by id). One query."""
    if not live:
        return
    alerts = (
        MonitoringAlert.objects.filter(deployment_id__in=list(live), status__in=MonitoringAlert.UNRESOLVED_STATUSES)
        .order_by("raised_at", "pk")
        .values_list("deployment_id", "pk", "rule_id", "severity", "status", "raised_at")
    )
    for deployment_id, pk, rule_id, severity, status, raised_at in alerts:
        live[deployment_id]["unresolved_alerts"].append(
            {"id": pk, "rule_id": rule_id, "severity": severity, "status": status, "raised_at": _ts(raised_at)}
        )


def _deployment_facts(model_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per model: its live deployment (``live_deployment``, null when none) with what its current
    phase realised (``phase_pnl``) and its unresolved monitoring alerts, and the versions a
    rollback could return to (``rollback_candidates``); four queries per 900 models."""
    live: dict[int, dict[str, Any]] = {}
    candidates: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(model_ids):
        rows = DeploymentRow.objects.filter(model_id__in=chunk, status__in=DeploymentRow.LIVE_STATUSES).select_related(
            "version", "rollback_target"
        )
        in_chunk: dict[int, dict[str, Any]] = {}
        for row in rows:
            target = row.rollback_target
            live[row.model_id] = in_chunk[row.pk] = {
                "id": row.pk,
                "version_id": row.version_id,
                "version_label": row.version.version,
                "status": row.status,
                "phase": row.phase,
                "phase_started_at": _ts(row.phase_started_at),
                "started_at": _ts(row.started_at),
                "capital_limit": str(row.capital_limit),
                "currency": row.currency,
                "instruments": list(row.instruments),
                "max_daily_loss": None if row.max_daily_loss is None else str(row.max_daily_loss),
                "rollback_target": None if target is None else {"version_id": target.pk, "label": target.version},
                "kill_switch_engaged": row.kill_switch_engaged,
                "phase_pnl": {"samples": 0, "days": 0, "total": "0", "worst_day": None, "worst_day_loss": "0"},
                "unresolved_alerts": [],
            }
        _add_phase_pnl(in_chunk)
        _add_unresolved_alerts(in_chunk)
        versions = (
            ModelVersion.objects.filter(model_id__in=chunk, status__in=_ROLLBACK_STATUSES)
            .order_by("model_id", "pk")
            .values_list("model_id", "pk", "version", "status")
        )
        for model_id, pk, label, status in versions:
            candidates[model_id].append({"version_id": pk, "label": label, "status": status})
    return {
        model_id: {"live_deployment": live.get(model_id), "rollback_candidates": candidates[model_id]}
        for model_id in model_ids
    }


def version_documents(version_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The trigger-free part of the document of each version, by version id.

    Queries (per 900 versions): the versions with their model, desk, owner, creator and
    datasets; the developers of their models; their assigned validators; their findings;
    their latest succeeded full risk assessments; their lifecycle events from the audit log; their
    models' live deployments and rollback candidates. Unknown ids are left out.
    """
    ids = list(version_ids)
    loaded: list[ModelVersion] = []
    for chunk in _chunks(ids):
        loaded += ModelVersion.objects.filter(pk__in=chunk).select_related(
            "model__desk",
            "model__owner",
            "created_by",
            "training_dataset__desk",
            "validation_dataset__desk",
            "test_dataset__desk",
        )
    model_ids = sorted({version.model_id for version in loaded})

    # Developers: the model's owner and everyone who created one of its versions (the
    # same people the segregation-of-duties rules call developers).
    developers: dict[int, dict[int, str]] = defaultdict(dict)
    validators: dict[int, list[int]] = defaultdict(list)
    for chunk in _chunks(model_ids):
        rows = ModelVersion.objects.filter(model_id__in=chunk).values_list(
            "model_id", "created_by_id", "created_by__username"
        )
        for model_id, user_id, username in rows.distinct():
            developers[model_id][user_id] = username
        grants = ModelGrant.objects.filter(content_object_id__in=chunk, permission__codename="validate_model")
        for model_id, user_id in grants.values_list("content_object_id", "user_id"):
            validators[model_id].append(user_id)

    findings: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(ids):
        rows = (
            FindingRow.objects.filter(version_id__in=chunk)
            .order_by("pk")
            .values_list("version_id", "pk", "severity", "status", "title", "due_date")
        )
        for version_id, pk, severity, status, title, due_date in rows:
            findings[version_id].append(
                {
                    "id": pk,
                    "severity": severity,
                    "status": status,
                    "title": title,
                    "due_date": due_date.isoformat() if due_date else None,
                }
            )

    assessments: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        rows = (
            RiskAssessmentRow.objects.filter(version_id__in=chunk, status="succeeded", kind="full")
            .order_by("version_id", "-finished_at", "-pk")
            .values_list("version_id", "pk", "finished_at", "metrics", "overfitting", "explainability")
        )
        for version_id, pk, finished_at, metrics, overfitting, explainability in rows:
            if version_id in assessments:
                continue  # ordered newest first per version: the latest one wins
            assessments[version_id] = {
                "id": pk,
                "completed_at": _ts(finished_at),
                # Rules compare numbers; a metric the checks could not compute is absent, not null.
                "metrics": {
                    name: value
                    for name, value in (metrics or {}).items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                },
                "overfitting": overfitting,
                "explainability": explainability,
            }

    history: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for chunk in _chunks([str(pk) for pk in ids]):
        events = (
            Event.objects.filter(object_type=_VERSION_TYPE, object_id__in=chunk, action__in=list(_HISTORY_ACTIONS))
            .order_by("seq")
            .values_list("object_id", "action", "actor_id", "actor_label", "timestamp")
        )
        for object_id, action, actor_id, actor_label, timestamp in events:
            # Ordered by seq: the latest occurrence of each step wins.
            history[int(object_id)][_HISTORY_ACTIONS[action]] = {
                "by": {"id": actor_id, "username": actor_label},
                "at": _ts(timestamp),
            }

    deployments = _deployment_facts(model_ids)
    documents = {}
    for version in loaded:
        model = version.model
        people = {model.owner_id: model.owner.get_username(), **developers[model.pk]}
        documents[version.pk] = _base_document(
            version,
            developers=[{"id": pk, "username": name} for pk, name in sorted(people.items())],
            validators=sorted(set(validators[model.pk])),
            history=history[version.pk],
            findings=findings[version.pk],
            latest_assessment=assessments.get(version.pk),
            deployment_facts=_rollback_view(deployments[model.pk], version.pk),
        )
    return documents


def _rollback_view(facts: dict[str, Any], version_id: int) -> dict[str, Any]:
    # A version is never its own rollback target.
    others = [item for item in facts["rollback_candidates"] if item["version_id"] != version_id]
    return {**facts, "rollback_candidates": others}


def with_trigger(
    document: Mapping[str, Any], *, trigger: triggers.Trigger, at: dt.datetime, requested_by: dict[str, Any]
) -> dict[str, Any]:
    """A copy of a base document completed for one evaluation."""
    return {
        **document,
        "trigger": trigger.as_document(),
        "evaluated_at": _ts(at),
        "requested_by": requested_by,
    }


def build_input_document(
    *,
    version: ModelVersion,
    trigger: str,
    requested_by: Actor,
    at: dt.datetime | None = None,
    risk_assessment: Mapping[str, Any] | None = None,
    findings: Sequence[Mapping[str, Any]] | None = None,
    signoff: Mapping[str, Any] | None = None,
    deployment: Mapping[str, Any] | None = None,
    monitoring: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The input document for evaluating ``trigger`` on ``version`` at ``at`` (default now),
    asked by ``requested_by``. Reserved sections given here are validated against their
    schema-1 shape (``ValidationError`` naming the section and field otherwise)."""
    try:
        parsed = triggers.parse(trigger)
    except triggers.TriggerError as exc:
        raise ValidationError({"trigger": [str(exc)]}) from exc
    if parsed.kind == triggers.TRANSITION and parsed.source != version.status:
        raise ValidationError(
            {"trigger": [f"{trigger} starts from {parsed.source}, but version {version} is {version.status}"]}
        )
    if at is not None and timezone.is_naive(at):
        raise ValidationError({"at": ["must be a timezone-aware date and time"]})
    document = with_trigger(
        version_documents([version.pk])[version.pk],
        trigger=parsed,
        at=at or timezone.now(),
        requested_by=requester(requested_by),
    )
    if risk_assessment is not None:
        document["risk_assessment"] = _reserved("risk_assessment", risk_assessment)
    if findings is not None:
        document["findings"] = _reserved("findings", findings)
    document["signoff"] = _reserved("signoff", signoff)
    document["deployment"] = _reserved("deployment", deployment)
    document["monitoring"] = _reserved("monitoring", monitoring)
    return document


def document_sha256(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the document's RFC 8785 canonical JSON."""
    return hashlib.sha256(canonical.dumps(document)).hexdigest()
