"""Post-model adjustments: the register of overlays applied to a model version's outputs
(PRA SS1/23 Principle 5; SR 11-7 / SR 26-2 overlays). Recorded and withdrawn by the compliance
function; each write is one transaction with its audit event. Re-exported by
``models_registry.services``, the one place that writes the inventory."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.scope import audited_change
from audit.services import Actor, actor_label, record_event
from audit.snapshot import snapshot
from governance.errors import Conflict, NotPermitted
from models_registry import selectors
from models_registry.choices import LifecycleStatus
from models_registry.models import AdjustmentStatus, ModelVersion, PostModelAdjustment

ADD_PERMISSION = "models_registry.add_postmodeladjustment"
WITHDRAW_PERMISSION = "models_registry.withdraw_postmodeladjustment"
# A rejected or retired version produces no outputs in use: there is nothing to adjust.
_NOT_ADJUSTABLE = frozenset({LifecycleStatus.REJECTED, LifecycleStatus.RETIRED})


def _text(value: Any, field: str, what: str, *, max_length: int | None = None) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError({field: [f"{what} is required"]})
    if max_length is not None and len(text) > max_length:
        raise ValidationError({field: [f"at most {max_length} characters ({len(text)} given)"]})
    return text


def _moment(value: Any, field: str, *, required: bool) -> dt.datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise ValidationError({field: ["a timezone-aware date and time (UTC) is required"]})
    return value.astimezone(dt.UTC)


def _require(actor: Actor, perm: str, action: str) -> None:
    if isinstance(actor, AbstractBaseUser) and not actor.has_perm(perm):
        raise NotPermitted(f"{actor.get_username()} may not {action} (needs permission {perm})")


@audited_change()
def adjustment_create(
    *,
    actor: Actor,
    version: ModelVersion,
    description: str,
    reason: str,
    adjustment: str,
    effective_from: dt.datetime,
    effective_until: dt.datetime | None = None,
    approved_by: AbstractBaseUser | None = None,
) -> PostModelAdjustment:
    """Record an adjustment applied to ``version``'s outputs.

    Compliance officers (``add_postmodeladjustment``) record adjustments on versions they can
    see; ``approved_by`` (the actor by default) must hold the same permission: the
    adjustment is the compliance function's decision. System actors (the demo, commands)
    name the approver. ``effective_until`` empty means until withdrawn.
    """
    _require(actor, ADD_PERMISSION, "record post-model adjustments")
    if isinstance(actor, AbstractBaseUser):
        visible = selectors.model_version_list(user=actor).filter(pk=version.pk).first()
        if visible is None:
            raise NotPermitted(f"{actor.get_username()} may not record adjustments on {version} (not in scope)")
        version = visible
        approved_by = approved_by or actor
    if approved_by is None:
        raise ValidationError({"approved_by": ["who approved the adjustment is required"]})
    if not approved_by.is_active or not approved_by.has_perm(ADD_PERMISSION):
        raise ValidationError(
            {"approved_by": [f"{approved_by.get_username()} may not approve post-model adjustments (compliance)"]}
        )
    if version.status in _NOT_ADJUSTABLE:
        raise ValidationError({"version": [f"{version} is {version.status}: it has no outputs in use to adjust"]})
    start = _moment(effective_from, "effective_from", required=True)
    end = _moment(effective_until, "effective_until", required=False)
    if end is not None and start is not None and end <= start:
        raise ValidationError({"effective_until": ["must be after effective_from"]})
    row = PostModelAdjustment(
        model_id=version.model_id,
        version=version,
        description=_text(description, "description", "a description"),
        reason=_text(reason, "reason", "a reason"),
        adjustment=_text(adjustment, "adjustment", "the kind and magnitude", max_length=300),
        approved_by=approved_by,
        effective_from=start,
        effective_until=end,
        created_by=actor if isinstance(actor, AbstractBaseUser) else None,
        created_by_label=actor_label(actor),
        created_at=timezone.now(),
    )
    row.full_clean()
    row.save()
    record_event(
        actor=actor, action="post_model_adjustment.recorded", target=row, after=snapshot(row), reason=row.reason
    )
    return row


@audited_change()
def adjustment_withdraw(*, actor: Actor, adjustment: PostModelAdjustment, reason: str) -> PostModelAdjustment:
    """End an adjustment now (``withdraw_postmodeladjustment``: compliance officers), with a reason.
    An adjustment already withdrawn or expired is refused."""
    _require(actor, WITHDRAW_PERMISSION, "withdraw post-model adjustments")
    if (
        isinstance(actor, AbstractBaseUser)
        and not selectors.adjustment_list(user=actor).filter(pk=adjustment.pk).exists()
    ):
        raise NotPermitted(f"{actor.get_username()} may not withdraw adjustment {adjustment.pk} (not in scope)")
    reason = _text(reason, "reason", "a reason for the withdrawal")
    row = PostModelAdjustment.objects.select_for_update().get(pk=adjustment.pk)
    now = timezone.now()
    status = row.status_at(now)
    if status in (AdjustmentStatus.WITHDRAWN, AdjustmentStatus.EXPIRED):
        when = row.withdrawn_at if status == AdjustmentStatus.WITHDRAWN else row.effective_until
        raise Conflict(f"adjustment {row.pk} is already {status} (since {when:%Y-%m-%d %H:%M} UTC)")
    before = snapshot(row)
    row.withdrawn_at = now
    row.withdrawn_by_label = actor_label(actor)
    row.withdrawal_reason = reason
    row.save(update_fields=["withdrawn_at", "withdrawn_by_label", "withdrawal_reason"])
    record_event(
        actor=actor,
        action="post_model_adjustment.withdrawn",
        target=row,
        before=before,
        after=snapshot(row),
        reason=reason,
    )
    return row
