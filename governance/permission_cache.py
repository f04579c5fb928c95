"""The trading permission's fast path: who may read which model's permission, remembered.

An order path polls ``GET /api/deployments/<model>/permission``; answering it through knox,
``has_perm`` and the model scope cost about 4 ms of CPU in four queries on every call
(docs/benchmarks.md). Once the full path has said yes to a knox token for a model reference,
that decision is kept in the cache under the token's SHA-256 (never the token itself) and the
model reference, with:

* the **access generation** it was decided under: one counter in the cache, bumped when any
  change that can take access away commits (a token deleted, a user saved or deleted, their
  groups or permissions changed, a role's permissions changed, a model or desk grant or an
  engagement saved or deleted, a model saved, a desk membership changed). A decision from an
  older generation is never used. The generation is read before anything the decision is
  made from, so a decision computed from rows a change has since replaced carries the older
  number;
* a **valid-until** time: the earliest of now + ``GOVERNANCE_TRADING_PERMISSION_TTL``, the
  token's expiry and the end of any of the user's engagements still running, so what ends by
  the clock ends on time too.

Only yes is remembered: a refusal always takes the full path, so access that is *given* is
seen at once and every error answer is the full path's. With a shared cache (Redis) every
process sees a bump at once; with the in-process default other processes keep a decision at
most its TTL (the same bound as the permission answer itself).
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

GENERATION_KEY = "governance:access-generation"
_DECISION_KEY = "governance:permission-reader:{}:{}"
TOKEN_PREFIX = "Token"


def presented_token(request: Any) -> str | None:
    """The knox token in ``Authorization: Token <token>``, or None for anything else."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split()
    if len(parts) != 2 or parts[0] != TOKEN_PREFIX:
        return None
    return parts[1]


def _decision_key(token: str, model_ref: str) -> str:
    # The reference is hashed with the token: a model name may hold any character.
    digest = hashlib.sha256(f"{token}\x00{model_ref}".encode()).hexdigest()
    return _DECISION_KEY.format(digest[:32], digest[32:])


def generation() -> int:
    """The current access generation (created if the cache has none)."""
    current = cache.get(GENERATION_KEY)
    if current is None:
        # A fresh start value (nanoseconds) rather than 0, so that a counter lost to eviction
        # cannot come back to a number an older decision still carries.
        cache.add(GENERATION_KEY, time.time_ns(), timeout=None)
        current = cache.get(GENERATION_KEY)
    return int(current)


def bump_generation() -> None:
    """Forget every remembered decision (now)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no counter yet: any new one differs from what decisions carry
        cache.add(GENERATION_KEY, time.time_ns(), timeout=None)


def access_changed() -> None:
    """Forget every remembered decision now and again when the current transaction commits.

    The bump on commit is the one that counts for other requests (a decision made from the
    rows as they were before the commit carries an older number); the immediate one covers
    reads inside the same transaction, which never see a commit in tests."""
    bump_generation()
    transaction.on_commit(bump_generation)


# This process's guess of the model id behind a decision key, so that one cache round trip
# can fetch the generation, the decision and the model's permission together. Only a guess: the
# decision read with it decides, and a wrong or missing guess costs one more round trip.
_model_id_guess: dict[str, int] = {}
_GUESSES_KEPT = 10_000


def remembered(token: str, model_ref: str) -> tuple[int, dict[str, Any] | None] | None:
    """For a yes the full path gave ``token`` for ``model_ref`` and still valid: the model id
    and, when it came in the same round trip, the model's cached permission; else None."""
    from governance.selectors import trading_permission_key

    key = _decision_key(token, model_ref)
    guess = _model_id_guess.get(key)
    keys = [GENERATION_KEY, key] if guess is None else [GENERATION_KEY, key, trading_permission_key(guess)]
    found = cache.get_many(keys)
    entry = found.get(key)
    if entry is None or entry["generation"] != found.get(GENERATION_KEY) or entry["valid_until"] <= time.time():
        return None
    model_id = entry["model_id"]
    if guess != model_id:
        if len(_model_id_guess) >= _GUESSES_KEPT:
            _model_id_guess.clear()
        _model_id_guess[key] = model_id
        return model_id, None
    return model_id, found.get(trading_permission_key(model_id))


def remembered_model_id(token: str, model_ref: str) -> int | None:
    """The model id the full path allowed ``token`` to read as ``model_ref``, if still valid."""
    found = remembered(token, model_ref)
    return None if found is None else found[0]


def remember(*, token: str, model_ref: str, model_id: int, user: Any, expiry: datetime | None, generation: int) -> None:
    """Keep the full path's yes (made under ``generation``) for ``token`` and ``model_ref``."""
    from models_registry.models import Engagement

    ttl = settings.GOVERNANCE_TRADING_PERMISSION_TTL
    if not ttl:
        return
    now = timezone.now()
    ends = [now.timestamp() + ttl]
    if expiry is not None:
        ends.append(expiry.timestamp())
    # An engagement may be what lets the user see the model: the decision ends with it.
    engagement_end = (
        Engagement.objects.filter(regulator_id=user.pk, revoked_at__isnull=True, ends_at__gt=now)
        .order_by("ends_at")
        .values_list("ends_at", flat=True)
        .first()
    )
    if engagement_end is not None:
        ends.append(engagement_end.timestamp())
    valid_until = min(ends)
    entry = {"model_id": model_id, "generation": generation, "valid_until": valid_until}
    cache.set(_decision_key(token, model_ref), entry, timeout=max(1, int(valid_until - now.timestamp()) + 1))


# Invalidation ------------------------------------------------------------------------------


def _changed(**kwargs: Any) -> None:
    access_changed()


def _m2m_changed(action: str, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        access_changed()


def _permission_input_changed(instance: Any, **kwargs: Any) -> None:
    """A version or deployment row was written: its model's cached trading permission is
    forgotten now and again when the transaction commits. The deployment services forget it
    themselves; this also covers every other path (a direct lifecycle transition such as
    deployed -> suspended or retired, the admin), so the permission's TTL is only a safety net."""
    from governance.selectors import forget_trading_permission

    model_id = getattr(instance, "model_id", None)
    if model_id is None:
        return
    forget_trading_permission(model_id)
    transaction.on_commit(lambda: forget_trading_permission(model_id))


def connect() -> None:
    """Bump the generation on every write that can take access away, and forget a model's
    trading permission on every write of its versions or deployments (AppConfig.ready)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from knox.models import AuthToken

    user = get_user_model()
    watched = [
        (AuthToken, False),
        (user, True),
        (Group, True),
        (Permission, True),
        (apps.get_model("governance", "DeskGrant"), True),
        (apps.get_model("governance", "Membership"), True),
        (apps.get_model("models_registry", "ModelGrant"), True),
        (apps.get_model("models_registry", "Engagement"), True),
        (apps.get_model("models_registry", "EngagementModel"), True),
        (apps.get_model("models_registry", "Model"), True),
        (apps.get_model("models_registry", "ModelVersion"), False),
    ]
    for model, on_save in watched:
        uid = f"governance.permission_cache.{model._meta.label_lower}"
        post_delete.connect(_changed, sender=model, dispatch_uid=f"{uid}.delete", weak=False)
        if on_save:
            post_save.connect(_changed, sender=model, dispatch_uid=f"{uid}.save", weak=False)
    for model in (apps.get_model("models_registry", "ModelVersion"), apps.get_model("governance", "Deployment")):
        uid = f"governance.permission_cache.permission.{model._meta.label_lower}"
        post_save.connect(_permission_input_changed, sender=model, dispatch_uid=f"{uid}.save", weak=False)
        post_delete.connect(_permission_input_changed, sender=model, dispatch_uid=f"{uid}.delete", weak=False)
    for through in (user.groups.through, user.user_permissions.through, Group.permissions.through):
        uid = f"governance.permission_cache.{through._meta.label_lower}"
        m2m_changed.connect(_m2m_changed, sender=through, dispatch_uid=uid, weak=False)
