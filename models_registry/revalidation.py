"""Periodic revalidation by tier and the sweep of stale runs (issue 7), run by Celery beat.

``revalidation_request_due`` asks for a full risk assessment (default parameters, as the
system actor ``system:revalidation``) of every approved, deployed or suspended version whose
latest succeeded full assessment finished longer ago than its model's tier allows
(``GOVERNANCE_REVALIDATION_DAYS_TIER_1/2/3``, 90/180/365 days by default), or that has none.
Each request is ``assessment_request``'s own audited change; this module writes nothing itself
except through services.

Each request names its occasion (``revalidation due <date>``), which is part of the
assessment's inputs: a due version gets a new, dated run on the current code and libraries
even when its data did not change (reproducing the numbers is itself the evidence, and a
library upgrade may change them). A second sweep the same day gets that run back
(``in_progress`` or ``unchanged``), not another one. Revalidating on new evidence (recent
data) means registering a new version with its datasets.

``assessment_end_stale`` ends failed (code ``stale``) the runs left ``running`` past any
worker's reach: a live run ends within the hard time limit (``CELERY_TASK_TIME_LIMIT``), and a
run whose worker died is delivered again within the broker's visibility timeout (Redis), so a
run started longer ago than both (plus a minute) will never finish by itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Max, Q
from django.utils import timezone

from audit.scope import audited_change
from audit.services import Actor, SystemActor
from governance.errors import ServiceUnavailable
from models_registry import assessment_services
from models_registry.choices import LifecycleStatus
from models_registry.models import AssessmentKind, AssessmentStatus, ModelVersion, RiskAssessment

logger = logging.getLogger(__name__)

REVALIDATION = SystemActor("revalidation")
REVALIDATED_STATUSES = (LifecycleStatus.APPROVED, LifecycleStatus.DEPLOYED, LifecycleStatus.SUSPENDED)
STALE_GRACE = dt.timedelta(minutes=1)


def interval_days() -> dict[int, int]:
    """Days between full assessments, by risk tier."""
    return {
        1: settings.GOVERNANCE_REVALIDATION_DAYS_TIER_1,
        2: settings.GOVERNANCE_REVALIDATION_DAYS_TIER_2,
        3: settings.GOVERNANCE_REVALIDATION_DAYS_TIER_3,
    }


def due_versions(*, now: dt.datetime | None = None) -> list[ModelVersion]:
    """Approved, deployed or suspended versions whose latest succeeded full assessment is older
    than their tier's interval, or who have none; each annotated with ``last_assessed_at``."""
    now = now or timezone.now()
    due = Q()
    for tier, days in interval_days().items():
        due |= Q(model__risk_tier=tier) & (
            Q(last_assessed_at__isnull=True) | Q(last_assessed_at__lt=now - dt.timedelta(days=days))
        )
    return list(
        ModelVersion.objects.filter(status__in=REVALIDATED_STATUSES)
        .annotate(
            last_assessed_at=Max(
                "assessments__finished_at",
                filter=Q(assessments__status=AssessmentStatus.SUCCEEDED, assessments__kind=AssessmentKind.FULL),
            )
        )
        .filter(due)
        .select_related("model")
        .order_by("model__risk_tier", "pk")
    )


@dataclass
class RevalidationReport:
    requested: list[int] = field(default_factory=list)  # new assessments' ids
    in_progress: list[int] = field(default_factory=list)  # queued or running ones returned instead
    unchanged: list[int] = field(default_factory=list)  # succeeded ones with the same inputs, returned
    skipped: dict[int, str] = field(default_factory=dict)  # version id -> why it cannot be assessed
    broker_unavailable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "in_progress": self.in_progress,
            "unchanged": self.unchanged,
            "skipped": {str(k): v for k, v in self.skipped.items()},
            "broker_unavailable": self.broker_unavailable,
        }


def revalidation_request_due(*, actor: Actor = REVALIDATION, now: dt.datetime | None = None) -> RevalidationReport:
    """Request a full assessment of every version due for revalidation (see the module's doc).

    One ``assessment_request`` per version, each its own audited transaction. A version that
    cannot be assessed (no target, no datasets) is skipped with the reason, and the others go
    on; an unreachable broker stops the sweep (that request ends failed ``broker_unavailable``
    and the next run tries again).
    """
    report = RevalidationReport()
    days = interval_days()
    for version in due_versions(now=now):
        try:
            assessment, created = assessment_services.assessment_request(
                actor=actor,
                version=version,
                kind=AssessmentKind.FULL,
                occasion=f"revalidation due {(now or timezone.now()).date().isoformat()}",
            )
        except ValidationError as exc:
            report.skipped[version.pk] = "; ".join(exc.messages)
            logger.warning("revalidation: version %s cannot be assessed: %s", version, report.skipped[version.pk])
            continue
        except ServiceUnavailable:
            report.broker_unavailable = True
            logger.error("revalidation: the job queue is unavailable; the sweep stops and runs again later")
            break
        if created:
            report.requested.append(assessment.pk)
        elif assessment.status == AssessmentStatus.SUCCEEDED:
            report.unchanged.append(assessment.pk)
            logger.info(
                "revalidation: version %s (tier %s, every %s days) was already revalidated today by assessment %s",
                version,
                version.model.risk_tier,
                days[version.model.risk_tier],
                assessment.pk,
            )
        else:
            report.in_progress.append(assessment.pk)
    return report


def stale_after() -> dt.timedelta:
    """How long after its start a running assessment can no longer finish by itself."""
    seconds = max(settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_BROKER_VISIBILITY_TIMEOUT)
    return dt.timedelta(seconds=seconds) + STALE_GRACE


@audited_change()
def _end_stale(*, actor: Actor, assessment_id: int, cutoff: dt.datetime) -> RiskAssessment | None:
    # Checked again under the row lock: a redelivery may have restarted it since the query.
    assessment = RiskAssessment.objects.select_for_update().get(pk=assessment_id)
    if assessment.status != AssessmentStatus.RUNNING or assessment.started_at is None:
        return None
    if assessment.started_at >= cutoff:
        return None
    limit = int(stale_after().total_seconds())
    return assessment_services.assessment_fail(
        actor=actor,
        assessment=assessment,
        code="stale",
        message=(
            f"running since {assessment.started_at.isoformat()} with no worker left to finish it (more than "
            f"{limit} s: the hard time limit and the broker's redelivery delay have passed); "
            "request it again"
        ),
        detail={
            "started_at": assessment.started_at.isoformat(),
            "attempts": assessment.attempts,
            "current_step": assessment.current_step,
            "stale_after_seconds": limit,
        },
    )


def assessment_end_stale(*, actor: Actor = REVALIDATION, now: dt.datetime | None = None) -> list[int]:
    """End failed (code ``stale``) every assessment running since before ``stale_after()``;
    returns their ids. Each is its own audited change (``risk_assessment.failed``)."""
    cutoff = (now or timezone.now()) - stale_after()
    ended = []
    candidates = RiskAssessment.objects.filter(status=AssessmentStatus.RUNNING, started_at__lt=cutoff)
    for pk in candidates.order_by("pk").values_list("pk", flat=True):
        if _end_stale(actor=actor, assessment_id=pk, cutoff=cutoff) is not None:
            ended.append(pk)
            logger.warning("risk assessment %s was left running and is now failed (stale)", pk)
    return ended
