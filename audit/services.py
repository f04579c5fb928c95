"""The one audit writer. Every service calls ``record_event`` inside its own transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction

from audit import context
from audit.models import Event
from audit.snapshot import json_safe


class SystemActor:
    """A non-human actor (a job, a command, the demo); recorded by its label."""

    def __init__(self, label: str) -> None:
        if not label:
            raise ValueError("a system actor needs a label")
        self.label = label if label.startswith("system:") else f"system:{label}"

    def __repr__(self) -> str:
        return f"SystemActor({self.label!r})"


Actor = AbstractBaseUser | SystemActor


def actor_label(actor: Actor | AnonymousUser | None) -> str:
    if isinstance(actor, SystemActor):
        return actor.label
    if actor is None or isinstance(actor, AnonymousUser):
        return "anonymous"
    return actor.get_username()


def record_event(
    *,
    actor: Actor | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> Event:
    """Append one event. Must run inside the caller's transaction (the change's own)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must be called inside the transaction that makes the change")
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id if object_id is not None else target.pk
    ctx = context.current()
    user = actor if isinstance(actor, AbstractBaseUser) else None
    return Event.objects.create(
        actor=user,
        actor_label=actor_label(actor),
        action=action,
        object_type=object_type or "",
        object_id="" if object_id is None else str(object_id),
        object_repr=str(target)[:300] if target is not None else "",
        before=json_safe(before) if before is not None else None,
        after=json_safe(after) if after is not None else None,
        reason=reason,
        request_id=ctx.request_id,
        client_address=ctx.client_address,
    )
