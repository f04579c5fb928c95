"""Risk assessments (issue 7): every change of a ``RiskAssessment``, each one audited transaction.

Life of an assessment::

    queued --start--> running --finish--> succeeded
       |                 |----fail------> failed
       |                 '----cancelled-> cancelled (after cancel_requested, at the next step)
       '--cancel / broker unavailable---> cancelled / failed

``assessment_request`` is idempotent: the same kind and inputs (artifact, datasets and
parameters by SHA-256, feature pipeline and target) return the queued, running or succeeded
assessment that already has them; a partial unique index makes that hold under concurrent
requests too. ``assessment_execute`` is what the Celery task runs: start, the pipeline
(``models_registry.assessment``) with a progress callback that also honours cancellation,
then finish or fail. Nothing is ever marked succeeded without its complete results, and the
findings an assessment raises are stored in the same transaction as its results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.scope import audited_change
from audit.services import Actor, SystemActor, actor_label, record_event
from governance.errors import Conflict, DomainError, NotPermitted, ServiceUnavailable
from models_registry import assessment as pipeline
from models_registry import features, selectors
from models_registry.checks.errors import CheckError
from models_registry.choices import Purpose
from models_registry.models import (
    ASSESSMENT_LIVE_STATUSES,
    AssessmentKind,
    AssessmentStatus,
    ModelVersion,
    RiskAssessment,
)

logger = logging.getLogger(__name__)

JOB = SystemActor("risk-assessment")


def max_attempts() -> int:
    """How many times a run interrupted by a lost worker is started before it ends failed."""
    return int(getattr(settings, "GOVERNANCE_ASSESSMENT_MAX_ATTEMPTS", 3))


_DATASET_ROLES = ("training", "validation", "test")


# --- Parameters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    check: Any = None  # value -> error message or None
    help: str = ""


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be zero or more"


def _fraction(v: float) -> str | None:
    return None if 0 <= v <= 1 else "must be between 0 and 1"


def _open_fraction(v: float) -> str | None:
    return None if 0 < v < 1 else "must be strictly between 0 and 1"


def _at_least(n: int) -> Any:
    return lambda v: None if v >= n else f"must be at least {n}"


def _between(low: int, high: int) -> Any:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def _even_partitions(v: int) -> str | None:
    return None if v >= 2 and v % 2 == 0 and v <= 20 else "must be an even number from 2 to 20"


PARAMETERS: dict[str, Param] = {
    "cost_bps": Param(float, 5.0, _non_negative, "transaction cost per unit traded, in basis points"),
    "slippage_bps": Param(float, 2.0, _non_negative, "slippage per unit traded, in basis points"),
    "probability_threshold": Param(float, 0.5, _open_fraction, "probability above which a classifier goes long"),
    # None: long-only unless the model's purpose is alpha (set by the service per model).
    "long_only": Param(bool, None, None, "no short positions"),
    "gap_threshold": Param(float, 0.10, _non_negative, "train/test gap above which overfitting is found"),
    "gap_metric": Param(str, "", None, "metric of the gap (default accuracy / directional_accuracy)"),
    "cv_splits": Param(int, 5, _between(2, 20), "purged k-fold splits"),
    "embargo": Param(float, 0.01, lambda v: None if 0 <= v < 1 else "must be in [0, 1)", "embargo fraction"),
    "pbo_partitions": Param(int, 16, _even_partitions, "CSCV partitions"),
    "pbo_configurations": Param(int, 8, _between(2, 30), "configurations in the PBO grid"),
    "pbo_threshold": Param(float, 0.5, _fraction, "PBO above which overfitting is found"),
    "dsr_threshold": Param(float, 0.95, _fraction, "deflated Sharpe ratio below which a finding is raised"),
    "psi_threshold": Param(float, 0.25, lambda v: None if v > 0 else "must be positive", "PSI of a drifted feature"),
    "random_seed": Param(int, 7, _between(0, 2**32 - 1), "seed of every random draw"),
    "permutation_repeats": Param(int, 5, _between(1, 50), "shuffles per feature"),
    "permutation_max_rows": Param(int, 1000, _at_least(30), "rows used for permutation importance"),
    "min_test_rows": Param(int, 30, _at_least(2), "fewest rows a test set may have"),
    "nan_tolerance": Param(float, 0.0, _fraction, "largest share of missing values per column"),
}


def normalise_parameters(raw: Any, *, version: ModelVersion) -> dict[str, Any]:
    """Every parameter with its default filled in and its type and range checked.

    Raises ``ValidationError`` on ``parameters`` naming each unknown key and each bad value.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationError({"parameters": ["must be a JSON object"]})
    errors = [
        f"{key}: unknown parameter (known: {', '.join(PARAMETERS)})" for key in sorted(set(raw) - PARAMETERS.keys())
    ]
    out: dict[str, Any] = {}
    for name, spec in PARAMETERS.items():
        value = raw.get(name, spec.default)
        if name == "long_only" and value is None:
            value = version.model.purpose != Purpose.ALPHA
        if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, spec.kind) or (spec.kind is not bool and isinstance(value, bool)):
            errors.append(f"{name}: must be {'a number' if spec.kind is float else spec.kind.__name__}, not {value!r}")
            continue
        if spec.kind is float and value != value:  # NaN
            errors.append(f"{name}: must be a number, not NaN")
            continue
        problem = spec.check(value) if spec.check else None
        if problem:
            errors.append(f"{name}: {problem} (got {value!r})")
            continue
        out[name] = value
    if out.get("gap_metric") and out["gap_metric"] not in (
        *pipeline.CLASSIFICATION_METRICS,
        *pipeline.REGRESSION_METRICS,
    ):
        errors.append(f"gap_metric: unknown metric {out['gap_metric']!r}")
    if errors:
        raise ValidationError({"parameters": errors})
    return out


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def assessment_inputs(
    *, version: ModelVersion, kind: str, parameters: dict[str, Any], occasion: str = ""
) -> tuple[dict[str, Any], str]:
    """What the numbers depend on, and the key (SHA-256 over kind and inputs) that identifies
    them; an ``occasion`` (a dated revalidation) is kept with the inputs and makes its own key."""
    datasets = {}
    for role in _DATASET_ROLES:
        dataset = getattr(version, f"{role}_dataset")
        datasets[role] = None if dataset is None else {"id": dataset.pk, "sha256": dataset.content_sha256}
    inputs = {
        "version": version.pk,
        "artifact_sha256": version.artifact_sha256,
        "datasets": datasets,
        "parameters_sha256": _sha256_json(parameters),
        "feature_pipeline": version.feature_pipeline,
        "target": version.target,
    }
    if occasion:
        inputs["occasion"] = occasion
    return inputs, _sha256_json({"kind": kind, "inputs": inputs})


def environment() -> dict[str, str]:
    """Versions of what computes the numbers (a rerun on the same versions gives the same numbers)."""
    versions = {"python": platform.python_version()}
    for package in ("numpy", "pandas", "scipy", "scikit-learn", "skops"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[package] = "missing"
    return versions


def _snapshot(assessment: RiskAssessment) -> dict[str, Any]:
    """What an event records: the state, not the (large) results, which stay on the row."""
    return {
        "version": assessment.version_id,
        "kind": assessment.kind,
        "status": assessment.status,
        "inputs_key": assessment.inputs_key,
        "attempts": assessment.attempts,
        "progress_percent": assessment.progress_percent,
        "current_step": assessment.current_step,
        "cancel_requested": assessment.cancel_requested,
        "celery_task_id": assessment.celery_task_id,
        "error": assessment.error,
    }


# --- Request ---------------------------------------------------------------------------------------


def _check_requester(actor: Actor, version: ModelVersion, action: str) -> ModelVersion:
    """Users need ``request_riskassessment`` and sight of the version; jobs and commands are trusted."""
    if isinstance(actor, AbstractBaseUser):
        if not actor.has_perm("models_registry.request_riskassessment"):
            raise NotPermitted(
                f"{actor.get_username()} may not {action} (needs permission models_registry.request_riskassessment)"
            )
        visible = selectors.model_version_list(user=actor).filter(pk=version.pk).first()
        if visible is None:
            raise NotPermitted(f"{actor.get_username()} may not {action} on version {version.pk} (not in scope)")
        return visible
    return ModelVersion.objects.select_related("model", "training_dataset", "validation_dataset", "test_dataset").get(
        pk=version.pk
    )


def _check_version_ready(version: ModelVersion, kind: str) -> None:
    errors: list[str] = []
    if not version.target:
        errors.append(f"version {version} has no target: set what the model predicts before assessing it")
    else:
        problem = features.get(version.feature_pipeline).target_error(version.target)
        if problem:
            errors.append(problem)
    needed = pipeline.KIND_DATASETS[kind]
    for role in needed:
        if getattr(version, f"{role}_dataset_id") is None:
            errors.append(f"a {kind} assessment needs a {role} dataset and version {version} has none")
    if not needed and not any(getattr(version, f"{role}_dataset_id") for role in _DATASET_ROLES):
        errors.append(f"version {version} has no dataset to assess")
    if errors:
        raise ValidationError({"version": errors})


def assessment_request(
    *,
    actor: Actor,
    version: ModelVersion,
    kind: str = AssessmentKind.FULL,
    parameters: dict[str, Any] | None = None,
    occasion: str = "",
) -> tuple[RiskAssessment, bool]:
    """Ask for a risk assessment of ``version``; returns it and whether it was created.

    The same kind and inputs give back the queued, running or succeeded assessment that has
    them (``created`` False), even when two requests race. A new one is stored queued with
    its event ``risk_assessment.requested``, and its job is sent to the queue once that is
    committed. If the broker cannot be reached, the assessment ends failed
    (``broker_unavailable``, its own audited change) and ``ServiceUnavailable`` (503) is raised:
    nothing stays queued that no worker will ever run. In eager mode (no broker) the job has
    run by the time this returns.

    ``occasion`` (e.g. ``revalidation due 2026-11-23``) becomes part of the inputs: a periodic
    revalidation is a new, dated run on the current code and libraries even when the version's
    data did not change, not the earlier assessment handed back.
    """
    if kind not in AssessmentKind.values:
        raise ValidationError({"kind": [f"unknown kind {kind!r} (known: {', '.join(AssessmentKind.values)})"]})
    version = _check_requester(actor, version, "request risk assessments")
    normalised = normalise_parameters(parameters, version=version)
    _check_version_ready(version, kind)
    inputs, key = assessment_inputs(version=version, kind=kind, parameters=normalised, occasion=occasion)
    existing = RiskAssessment.objects.filter(inputs_key=key, status__in=ASSESSMENT_LIVE_STATUSES).first()
    if existing is not None:
        return existing, False
    try:
        assessment = _create(actor=actor, version=version, kind=kind, parameters=normalised, inputs=inputs, key=key)
    except IntegrityError:
        # A concurrent request stored the same inputs first: that one is the assessment.
        existing = RiskAssessment.objects.filter(inputs_key=key, status__in=ASSESSMENT_LIVE_STATUSES).first()
        if existing is None:
            raise
        return existing, False
    # Registered after the change's own transaction (not inside it, where the audited scope is
    # still open while on_commit callbacks run): now if no outer transaction, else at its commit.
    pk, task_id = assessment.pk, assessment.celery_task_id
    transaction.on_commit(lambda: _enqueue(pk, task_id))
    assessment.refresh_from_db()
    return assessment, True


@audited_change()
def _create(
    *, actor: Actor, version: ModelVersion, kind: str, parameters: dict[str, Any], inputs: dict[str, Any], key: str
) -> RiskAssessment:
    assessment = RiskAssessment(
        model_id=version.model_id,
        version=version,
        kind=kind,
        parameters=parameters,
        inputs=inputs,
        inputs_key=key,
        random_seed=parameters["random_seed"],
        # Chosen here so the API can show the job's id while it waits in the queue.
        celery_task_id=str(uuid.uuid4()),
        requested_by=actor if isinstance(actor, AbstractBaseUser) else None,
        requested_by_label=actor_label(actor),
        queued_at=timezone.now(),
    )
    assessment.full_clean(exclude=["inputs_key"])
    assessment.save()  # a concurrent twin with the same inputs fails here on the partial unique index
    record_event(
        actor=actor,
        action="risk_assessment.requested",
        target=assessment,
        after={**_snapshot(assessment), "parameters": parameters, "inputs": inputs},
    )
    return assessment


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError as KombuOperationalError

    return (KombuOperationalError, ConnectionError, OSError, TimeoutError)


def _enqueue(assessment_id: int, task_id: str) -> None:
    from celery import current_app

    from models_registry.tasks import run_risk_assessment

    if current_app.conf.task_always_eager:
        # No broker: the job runs here and now; its own errors end it failed, never here.
        run_risk_assessment.apply_async(args=[assessment_id], task_id=task_id)
        return
    try:
        run_risk_assessment.apply_async(args=[assessment_id], task_id=task_id)
    except _broker_errors() as exc:
        assessment_fail(
            actor=JOB,
            assessment=RiskAssessment.objects.get(pk=assessment_id),
            code="broker_unavailable",
            message=f"the job queue could not be reached, so the assessment was not started: {exc}",
        )
        raise ServiceUnavailable(
            f"the job queue is unavailable; risk assessment {assessment_id} was not started (marked failed). "
            "Try again later.",
            detail={"assessment": assessment_id},
        ) from exc


# --- The job's transitions --------------------------------------------------------------------------


@audited_change()
def assessment_start(*, actor: Actor, assessment: RiskAssessment, task_id: str = "") -> tuple[RiskAssessment, bool]:
    """Mark the assessment running; returns it and whether the job should run now.

    Exactly once: a finished (succeeded, failed, cancelled) assessment is left alone (a
    duplicate or redelivered message does nothing). A running one is a redelivery after its
    worker was lost: it restarts cleanly from the first step, up to
    ``GOVERNANCE_ASSESSMENT_MAX_ATTEMPTS`` attempts, after which it ends failed.
    """
    assessment = RiskAssessment.objects.select_for_update().get(pk=assessment.pk)
    if assessment.is_final:
        return assessment, False
    if assessment.status == AssessmentStatus.QUEUED and assessment.cancel_requested:
        return _end_cancelled(actor=actor, assessment=assessment), False
    before = _snapshot(assessment)
    restarted = assessment.status == AssessmentStatus.RUNNING
    limit = max_attempts()
    if restarted and assessment.attempts >= limit:
        return _fail(
            actor=actor,
            assessment=assessment,
            code="too_many_attempts",
            message=f"the job was interrupted {assessment.attempts} times (worker lost); it is not restarted again",
            detail={"attempts": assessment.attempts, "limit": limit},
        ), False
    assessment.status = AssessmentStatus.RUNNING
    assessment.attempts += 1
    assessment.celery_task_id = task_id or assessment.celery_task_id
    assessment.started_at = timezone.now()
    assessment.progress_percent = 0
    assessment.current_step = "starting"
    assessment.environment = environment()
    assessment.save()
    record_event(
        actor=actor,
        action="risk_assessment.started",
        target=assessment,
        before=before,
        after={**_snapshot(assessment), "restarted": restarted, "environment": assessment.environment},
    )
    return assessment, True


class AssessmentCancelled(Exception):
    """Raised by the progress callback when a cancellation was asked for; the job ends cancelled."""


@audited_change()
def assessment_progress(*, actor: Actor, assessment: RiskAssessment, percent: int, step: str) -> RiskAssessment:
    """Record the job's progress at a new step (one event per step; the job reports only steps).

    Raises ``AssessmentCancelled`` if a cancellation was asked for, and ``Conflict`` if the
    assessment is no longer running (another delivery took it over or it was ended).
    """
    assessment = RiskAssessment.objects.select_for_update().get(pk=assessment.pk)
    if assessment.status != AssessmentStatus.RUNNING:
        raise Conflict(f"risk assessment {assessment.pk} is {assessment.status}, not running")
    if assessment.cancel_requested:
        raise AssessmentCancelled(assessment.pk)
    percent = max(0, min(100, int(percent)))
    if step == assessment.current_step:
        return assessment  # no change of step, no write
    before = {"progress_percent": assessment.progress_percent, "current_step": assessment.current_step}
    assessment.progress_percent = percent
    assessment.current_step = step[:100]
    assessment.save(update_fields=["progress_percent", "current_step"])
    record_event(
        actor=actor,
        action="risk_assessment.progressed",
        target=assessment,
        before=before,
        after={"progress_percent": percent, "current_step": assessment.current_step},
    )
    return assessment


def _due(severity: str) -> dt.date:
    return timezone.now().date() + dt.timedelta(days=pipeline.FINDING_DUE_DAYS[severity])


@audited_change()
def assessment_finish(*, actor: Actor, assessment: RiskAssessment, outcome: pipeline.Outcome) -> RiskAssessment:
    """Store the complete outcome: succeeded, with its metrics, results and the findings it raises.

    One transaction: the findings (remediation owner: the model's owner; due by severity), the
    results that justify them and the rating are stored together or not at all. The rating is
    decided by the policies in force at the ``assessment`` trigger (``rating``: green, amber or
    red; ``rating_rules``: the rules that decided it; ``rating_decision``: the stored policy
    decision); with no policy set in force the rating stays null and ``rating_rules`` says why.
    A cancellation asked for while the last step ran wins: the assessment ends cancelled and
    nothing is stored.
    """
    from governance.services import _finding_raise_by_assessment

    assessment = RiskAssessment.objects.select_for_update().select_related("version__model").get(pk=assessment.pk)
    if assessment.status != AssessmentStatus.RUNNING:
        raise Conflict(f"risk assessment {assessment.pk} is {assessment.status}, not running")
    if assessment.cancel_requested:
        return _end_cancelled(actor=actor, assessment=assessment)
    before = _snapshot(assessment)
    assessment.status = AssessmentStatus.SUCCEEDED
    assessment.metrics = outcome.metrics
    assessment.results = outcome.results
    assessment.overfitting = outcome.overfitting
    assessment.explainability = outcome.explainability
    assessment.progress_percent = 100
    assessment.current_step = "done"
    assessment.finished_at = timezone.now()
    rated = _rate(actor=actor, assessment=assessment)
    assessment.save()
    record_event(
        actor=actor,
        action="risk_assessment.succeeded",
        target=assessment,
        before=before,
        after={
            **_snapshot(assessment),
            "rating": assessment.rating,
            "rating_rules": assessment.rating_rules,
            "rating_decision": assessment.rating_decision_id,
            "policy_set_hash": None if rated is None else rated["policy_set_hash"],
            "metrics": outcome.metrics,
            "overfitting": outcome.overfitting,
            "explainability": None
            if outcome.explainability is None
            else {k: outcome.explainability[k] for k in ("method", "summary")},
            "findings": [f.check for f in outcome.findings],
        },
    )
    owner = assessment.version.model.owner
    for spec in outcome.findings:
        _finding_raise_by_assessment(
            actor=actor,
            assessment=assessment,
            severity=spec.severity,
            title=spec.title[:200],
            description=spec.description,
            remediation_owner=owner,
            due_date=_due(spec.severity),
        )
    return assessment


def _not_rated(message: str) -> list[dict[str, Any]]:
    """``rating_rules`` of an assessment left unrated: one entry saying why, in the rules' shape."""
    return [{"id": None, "outcome": "not_rated", "message": message, "references": []}]


def _rate(*, actor: Actor, assessment: RiskAssessment) -> dict[str, Any] | None:
    """Set the rating of the (about to be) succeeded assessment from the policies in force; the
    policy decision is stored in the caller's transaction, so it stands or falls with the results.
    Returns what ``risk_assessment_rating`` returned (None: not rated).

    Only full assessments are rated: a partial kind runs some checks only, and the rules at the
    ``assessment`` trigger (OVERFIT-01 for one) would hold the checks it skipped against it.
    """
    from governance.services import risk_assessment_rating

    rated = None
    if assessment.kind == AssessmentKind.FULL:
        rated = risk_assessment_rating(
            actor=actor,
            version=assessment.version,
            risk_assessment=policy_section(assessment),
            at=assessment.finished_at,
        )
    if rated is None:
        assessment.rating, assessment.rating_decision = None, None
        assessment.rating_rules = _not_rated(
            f"only full assessments are rated; this one is {assessment.kind}"
            if assessment.kind != AssessmentKind.FULL
            else "no policy set was in force when the assessment finished, so no rating was decided"
        )
    else:
        assessment.rating, assessment.rating_rules = rated["rating"], rated["rules"]
        assessment.rating_decision_id = rated["decision"]
    return rated


def policy_section(assessment: RiskAssessment) -> dict[str, Any]:
    """The assessment as the policies' ``risk_assessment`` input section (governance.policy.document).

    Metrics are numbers only, as the document's shape requires and as the document built from
    the stored assessments has them: a metric the checks could not compute (None) is absent.
    """
    return {
        "id": assessment.pk,
        "completed_at": assessment.finished_at,
        "metrics": {
            name: value
            for name, value in (assessment.metrics or {}).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
        "overfitting": assessment.overfitting,
        "explainability": assessment.explainability,
    }


def _fail(*, actor: Actor, assessment: RiskAssessment, code: str, message: str, detail: Any = None) -> RiskAssessment:
    before = _snapshot(assessment)
    assessment.status = AssessmentStatus.FAILED
    assessment.error = {"code": code, "message": message, "detail": detail or {}}
    # No partial result survives a failure.
    assessment.metrics = assessment.results = assessment.overfitting = assessment.explainability = None
    assessment.finished_at = timezone.now()
    assessment.save()
    record_event(
        actor=actor, action="risk_assessment.failed", target=assessment, before=before, after=_snapshot(assessment)
    )
    return assessment


@audited_change()
def assessment_fail(
    *, actor: Actor, assessment: RiskAssessment, code: str, message: str, detail: dict[str, Any] | None = None
) -> RiskAssessment:
    """End a queued or running assessment failed with ``{code, message, detail}``; no metrics are kept.
    A finished assessment is left as it is."""
    assessment = RiskAssessment.objects.select_for_update().get(pk=assessment.pk)
    if assessment.is_final:
        return assessment
    return _fail(actor=actor, assessment=assessment, code=code, message=message, detail=detail)


def _end_cancelled(*, actor: Actor, assessment: RiskAssessment, reason: str = "") -> RiskAssessment:
    before = _snapshot(assessment)
    assessment.status = AssessmentStatus.CANCELLED
    assessment.metrics = assessment.results = assessment.overfitting = assessment.explainability = None
    assessment.finished_at = timezone.now()
    assessment.save()
    record_event(
        actor=actor,
        action="risk_assessment.cancelled",
        target=assessment,
        before=before,
        after=_snapshot(assessment),
        reason=reason,
    )
    return assessment


@audited_change()
def assessment_cancel(*, actor: Actor, assessment: RiskAssessment, reason: str = "") -> RiskAssessment:
    """Cancel: a queued assessment ends cancelled at once; a running one is asked to stop
    (``cancel_requested``) and ends cancelled at its next step. A finished one cannot be."""
    _check_requester(actor, assessment.version, "cancel risk assessments")
    assessment = RiskAssessment.objects.select_for_update().get(pk=assessment.pk)
    if assessment.is_final:
        raise Conflict(f"risk assessment {assessment.pk} is already {assessment.status}")
    if assessment.status == AssessmentStatus.QUEUED:
        return _end_cancelled(actor=actor, assessment=assessment, reason=reason)
    if assessment.cancel_requested:
        return assessment
    before = _snapshot(assessment)
    assessment.cancel_requested = True
    assessment.save(update_fields=["cancel_requested"])
    record_event(
        actor=actor,
        action="risk_assessment.cancel_requested",
        target=assessment,
        before=before,
        after=_snapshot(assessment),
        reason=reason,
    )
    return assessment


@audited_change()
def _cancelled_by_job(*, actor: Actor, assessment: RiskAssessment) -> RiskAssessment:
    assessment = RiskAssessment.objects.select_for_update().get(pk=assessment.pk)
    if assessment.is_final:
        return assessment
    return _end_cancelled(actor=actor, assessment=assessment, reason="stopped at a step boundary")


# --- The job -------------------------------------------------------------------------------------------


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def load_inputs(assessment: RiskAssessment) -> pipeline.Inputs:
    """The pipeline's inputs, checked against the hashes recorded when the assessment was requested."""
    from models_registry.services import read_dataset_frame

    version = ModelVersion.objects.select_related(
        "model", "training_dataset", "validation_dataset", "test_dataset"
    ).get(pk=assessment.version_id)
    recorded = assessment.inputs
    artifact = _read(version.artifact.name)
    if hashlib.sha256(artifact).hexdigest() != recorded["artifact_sha256"]:
        raise Conflict(
            f"the stored artifact of {version} no longer matches the SHA-256 recorded when the assessment was requested"
        )
    data = {}
    for role in _DATASET_ROLES:
        dataset = getattr(version, f"{role}_dataset")
        expected = recorded["datasets"].get(role)
        if dataset is None:
            continue
        if expected is None or expected["sha256"] != dataset.content_sha256:
            raise Conflict(f"the {role} dataset of {version} changed since the assessment was requested")
        data[role] = pipeline.DatasetInput(
            role=role,
            name=dataset.name,
            frame=read_dataset_frame(dataset),
            rules=dataset.rules,
            time_column=dataset.time_column,
        )
    return pipeline.Inputs(
        kind=assessment.kind,
        parameters=assessment.parameters,
        artifact=artifact,
        feature_pipeline=recorded["feature_pipeline"],
        target=recorded["target"],
        feature_names=list(version.feature_names or []),
        purpose=version.model.purpose,
        complexity=str(version.model.complexity.value),
        datasets=data,
    )


def assessment_execute(*, assessment_id: int, task_id: str = "", actor: Actor = JOB) -> RiskAssessment:
    """Run one assessment to its end (what the Celery task does); returns it, finished.

    Bad input of any kind (a ``CheckError`` from the checks, a ``DomainError`` such as an
    unsafe artifact, a ``ValidationError``) ends it failed with the cause's code and message.
    Transient database errors propagate, so the task retries (the next delivery restarts the
    run); any other error also ends it failed (``internal_error``) and is logged.
    """
    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import InterfaceError, OperationalError

    assessment, should_run = assessment_start(
        actor=actor, assessment=RiskAssessment.objects.get(pk=assessment_id), task_id=task_id
    )
    if not should_run:
        return assessment

    def progress(percent: int, step: str) -> None:
        assessment_progress(actor=actor, assessment=assessment, percent=percent, step=step)

    try:
        outcome = pipeline.run(load_inputs(assessment), progress)
    except AssessmentCancelled:
        return _cancelled_by_job(actor=actor, assessment=assessment)
    except CheckError as exc:
        return assessment_fail(
            actor=actor, assessment=assessment, code=exc.code, message=exc.message, detail=_safe(exc.detail)
        )
    except DomainError as exc:
        if (
            isinstance(exc, Conflict)
            and not RiskAssessment.objects.filter(pk=assessment.pk, status=AssessmentStatus.RUNNING).exists()
        ):
            return RiskAssessment.objects.get(pk=assessment.pk)  # ended elsewhere meanwhile
        return assessment_fail(
            actor=actor, assessment=assessment, code=exc.code, message=exc.message, detail=_safe(exc.detail)
        )
    except ValidationError as exc:
        return assessment_fail(
            actor=actor, assessment=assessment, code="invalid_input", message="; ".join(exc.messages)
        )
    except SoftTimeLimitExceeded:
        return assessment_fail(
            actor=actor,
            assessment=assessment,
            code="time_limit",
            message=f"the assessment ran longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} s and was stopped",
        )
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("risk assessment %s failed unexpectedly", assessment.pk)
        return assessment_fail(
            actor=actor, assessment=assessment, code="internal_error", message=f"{type(exc).__name__}: {exc}"
        )
    try:
        return assessment_finish(actor=actor, assessment=assessment, outcome=outcome)
    except Conflict:
        return RiskAssessment.objects.get(pk=assessment.pk)  # ended elsewhere meanwhile
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        # Storing the results or a finding failed: that transaction rolled back whole, so the
        # assessment is still running with nothing stored; it ends failed instead.
        logger.exception("risk assessment %s could not be stored", assessment.pk)
        return assessment_fail(
            actor=actor, assessment=assessment, code="internal_error", message=f"{type(exc).__name__}: {exc}"
        )


def _safe(detail: Any) -> Any:
    """Error details as JSON (a check's detail may hold timestamps or numpy values)."""
    from models_registry.checks._json import jsonable

    try:
        return jsonable(detail)
    except TypeError:
        return {"detail": str(detail)}
