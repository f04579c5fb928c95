"""Changes to the organisation: desks, members' desks, role groups. Each is audited."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.utils import timezone
from knox.models import AuthToken

from audit.scope import audited_change
from audit.services import Actor, EventEntry, SystemActor, actor_label, record_event, record_events
from audit.snapshot import snapshot
from governance.errors import NotPermitted
from governance.models import Desk, DeskGrant, Membership, PolicyDecision, PolicySet
from governance.policy import document as policy_document
from governance.policy import engine as policy_engine
from governance.policy import loader as policy_loader
from governance.policy import store as policy_store
from governance.roles import ROLE_PERMISSIONS, Role
from models_registry.models import ModelVersion
from models_registry.selectors import model_version_list

User = get_user_model()


@audited_change()
def desk_create(*, actor: Actor, code: str, name: str) -> Desk:
    desk = Desk(code=code, name=name)
    desk.full_clean()
    desk.save()
    record_event(actor=actor, action="desk.created", target=desk, after=snapshot(desk))
    return desk


@audited_change()
def desk_update(*, actor: Actor, desk: Desk, changes: dict[str, Any]) -> Desk:
    desk = Desk.objects.select_for_update().get(pk=desk.pk)
    before = snapshot(desk)
    for field, value in changes.items():
        if field not in {"code", "name"}:
            raise ValueError(f"{field} cannot be changed on a desk")
        setattr(desk, field, value)
    desk.full_clean()
    desk.save()
    record_event(actor=actor, action="desk.updated", target=desk, before=before, after=snapshot(desk))
    return desk


@audited_change()
def membership_set(*, actor: Actor, user: AbstractBaseUser, desk: Desk) -> Membership:
    """Put ``user`` on ``desk`` (moving them if they were on another)."""
    existing = Membership.objects.select_for_update().filter(user=user).first()
    before = snapshot(existing) if existing else None
    if existing and existing.desk_id == desk.pk:
        return existing
    membership = existing or Membership(user=user)
    membership.desk = desk
    membership.save()
    record_event(actor=actor, action="membership.set", target=membership, before=before, after=snapshot(membership))
    return membership


@audited_change()
def roles_sync(*, actor: Actor | None = None) -> list[str]:
    """Create the role groups and give each exactly its permissions; returns what changed.

    Idempotent: run after every migrate, it writes (and audits) only differences.
    """
    actor = actor or SystemActor("roles-sync")
    changed: list[str] = []
    for role, codenames in ROLE_PERMISSIONS.items():
        group, created = Group.objects.get_or_create(name=role.value)
        wanted = set(Permission.objects.filter(codename__in=codenames).values_list("pk", flat=True))
        current = set(group.permissions.values_list("pk", flat=True))
        if created or wanted != current:
            group.permissions.set(wanted)
            record_event(
                actor=actor,
                action="role.synced",
                target=group,
                before={"permissions": sorted(current)} if not created else None,
                after={"role": role.value, "permissions": sorted(codenames)},
            )
            changed.append(role.value)
    return changed


@audited_change()
def user_create(
    *,
    actor: Actor,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    roles: list[Role] | tuple[Role, ...] = (),
    desk: Desk | None = None,
    is_superuser: bool = False,
) -> AbstractBaseUser:
    """Create a staff user with roles (groups) and optionally a desk.

    The password must pass ``AUTH_PASSWORD_VALIDATORS``; otherwise ``ValidationError``
    (on ``password``) and nothing is written.
    """
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=True,
        is_superuser=is_superuser,
    )
    _validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    groups = [Group.objects.get(name=role.value) for role in roles]
    user.groups.set(groups)
    after = {k: v for k, v in snapshot(user).items() if k != "password"}
    after["roles"] = [role.value for role in roles]
    record_event(actor=actor, action="user.created", target=user, after=after)
    if desk is not None:
        membership_set(actor=actor, user=user, desk=desk)
    return user


def _validate_password(password: str, user: AbstractBaseUser) -> None:
    """Django's password validators, their messages under the ``password`` field."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc


@audited_change()
def user_set_password(*, actor: Actor, user: AbstractBaseUser, password: str) -> None:
    """Set a new password; one the validators refuse raises ``ValidationError``, changing nothing."""
    _validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    record_event(actor=actor, action="user.password_set", target=user)


@audited_change()
def login_succeeded(*, user: AbstractBaseUser) -> None:
    """Stamp ``last_login`` and record the login, in one transaction."""
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    record_event(actor=user, action="auth.login_succeeded", target=user)


def _account(username: str) -> tuple[str, AbstractBaseUser | None]:
    username = (username or "")[: User._meta.get_field(User.USERNAME_FIELD).max_length]
    account = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first() if username else None
    return username, account


@audited_change()
def login_failed(*, username: str, locked_out: bool = False) -> None:
    """Record a failed login attempt, naming the account if it exists (never the password).

    ``locked_out``: the attempt was refused because a lock-out was in force, without its
    password being checked.
    """
    username, account = _account(username)
    record_event(
        actor=None,
        action="auth.login_failed",
        target=account,
        object_type=User._meta.label_lower,
        after={"username": username, "account_exists": account is not None, "locked_out": locked_out},
    )


@audited_change()
def login_locked_out(
    *, username: str, client_address: str | None, failures: int | None, cool_off: timedelta | None
) -> None:
    """Record that ``username`` is locked out from ``client_address`` after ``failures`` failures.

    Written once, when the lock-out begins; attempts refused during it are ``auth.login_failed``
    events with ``locked_out``. ``cool_off`` None: locked until an administrator clears it.
    """
    username, account = _account(username)
    now = timezone.now()
    record_event(
        actor=None,
        action="auth.locked_out",
        target=account,
        object_type=User._meta.label_lower,
        after={
            "username": username,
            "account_exists": account is not None,
            "client_address": client_address,
            "failures": failures,
            "cool_off_seconds": int(cool_off.total_seconds()) if cool_off is not None else None,
            "locked_until": now + cool_off if cool_off is not None else None,
        },
    )


# API tokens (django-rest-knox). The token itself is shown once, to its holder; the database
# keeps its SHA-512 digest and the log its first characters (knox's ``token_key``), which
# identify it but cannot be used to authenticate. Tokens are not governed rows: knox deletes
# expired ones while authenticating, and that needs no event.
_TOKEN_TYPE = "knox.authtoken"


def _token_record(token: AuthToken) -> dict[str, Any]:
    return {
        "user": token.user_id,
        "username": token.user.get_username(),
        "token_prefix": token.token_key,
        "created": token.created,
        "expiry": token.expiry,
    }


def _require_token_manager(actor: Actor, user: AbstractBaseUser) -> None:
    """A user manages their own tokens; administrators (who manage users) anyone's."""
    if not isinstance(actor, AbstractBaseUser) or actor.pk == user.pk:
        return
    if not (actor.is_superuser or actor.has_perm("auth.change_user")):
        raise NotPermitted(f"{actor.get_username()} may not manage the API tokens of {user.get_username()}")


@audited_change()
def token_issue(*, actor: Actor, user: AbstractBaseUser, ttl: timedelta | None = None) -> tuple[AuthToken, str]:
    """Issue an API token for ``user``, valid for ``ttl`` (default ``GOVERNANCE_API_TOKEN_TTL``).

    Returns the stored row and the token. The token is not stored and must be handed to
    the user now; the event records its prefix and expiry only.
    """
    _require_token_manager(actor, user)
    ttl = settings.GOVERNANCE_API_TOKEN_TTL if ttl is None else ttl
    if ttl <= timedelta(0):
        raise ValidationError({"ttl": ["must be positive"]})
    if not user.is_active:
        raise ValidationError({"user": [f"{user.get_username()} is inactive"]})
    instance, token = AuthToken.objects.create(user=user, expiry=ttl)
    record_event(
        actor=actor,
        action="auth.token_issued",
        object_type=_TOKEN_TYPE,
        object_id=instance.token_key,
        after=_token_record(instance),
    )
    return instance, token


@audited_change()
def token_revoke(*, actor: Actor, tokens: Iterable[AuthToken], reason: str = "") -> int:
    """Revoke (delete) ``tokens``, one ``auth.token_revoked`` event each; returns how many.

    Tokens already gone (revoked meanwhile, or deleted by knox as expired) are skipped.
    """
    digests = [token.digest for token in tokens]
    rows = list(
        AuthToken.objects.select_for_update(of=("self",))
        .filter(digest__in=digests)
        .select_related("user")
        .order_by("created", "digest")
    )
    for row in rows:
        _require_token_manager(actor, row.user)
    entries: list[EventEntry] = [
        {
            "action": "auth.token_revoked",
            "object_type": _TOKEN_TYPE,
            "object_id": row.token_key,
            "before": _token_record(row),
            "reason": reason,
        }
        for row in rows
    ]
    record_events(actor=actor, entries=entries)
    AuthToken.objects.filter(digest__in=[row.digest for row in rows]).delete()
    return len(rows)


@audited_change()
def token_revoke_all(*, actor: Actor, user: AbstractBaseUser, reason: str = "") -> int:
    """Revoke every API token of ``user`` (a lost token, a leaver); returns how many."""
    _require_token_manager(actor, user)
    return token_revoke(actor=actor, tokens=AuthToken.objects.filter(user=user), reason=reason)


@audited_change()
def login_lockout_clear(*, actor: Actor, attempts: Iterable[AccessAttempt], reason: str = "") -> int:
    """Forget the failed logins of ``attempts`` (django-axes rows), lifting any lock-out they
    cause before its cool-off ends; one ``auth.lockout_cleared`` event each. Administrators only."""
    if isinstance(actor, AbstractBaseUser) and not (actor.is_superuser or actor.has_perm("auth.change_user")):
        raise NotPermitted(f"{actor.get_username()} may not clear login lock-outs (administrators only)")
    rows = list(AccessAttempt.objects.select_for_update().filter(pk__in=[a.pk for a in attempts]).order_by("pk"))
    entries: list[EventEntry] = []
    for row in rows:
        username, account = _account(row.username or "")
        entries.append(
            {
                "action": "auth.lockout_cleared",
                "target": account,
                "object_type": User._meta.label_lower,
                "before": {
                    "username": username,
                    "account_exists": account is not None,
                    "client_address": row.ip_address,
                    "failures": row.failures_since_start,
                    "last_failure": row.attempt_time,
                },
                "reason": reason,
            }
        )
    record_events(actor=actor, entries=entries)
    AccessAttempt.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


DESK_GRANTABLE = frozenset({"view_desk_models", "change_desk_models"})


def _desk_grant_snapshot(grant: DeskGrant) -> dict[str, Any]:
    return {
        "user": grant.user_id,
        "username": grant.user.get_username(),
        "permission": grant.permission.codename,
        "desk": grant.content_object_id,
    }


def _require_access_admin(actor: Actor) -> None:
    if isinstance(actor, AbstractBaseUser) and not (actor.is_superuser or actor.has_perm("auth.change_user")):
        raise NotPermitted(f"{actor.get_username()} may not manage desk access (administrators only)")


@audited_change()
def desk_access_grant(
    *, actor: Actor, user: AbstractBaseUser, desk: Desk, permission: str, reason: str = ""
) -> DeskGrant:
    """Let ``user`` see (or change) every model of ``desk``. Never a regulator: a grant has no
    end, and regulators see only what an engagement shares, for its duration."""
    if permission not in DESK_GRANTABLE:
        raise ValidationError({"permission": [f"must be one of {', '.join(sorted(DESK_GRANTABLE))}"]})
    _require_access_admin(actor)
    if user.groups.filter(name=Role.REGULATOR.value).exists():
        raise ValidationError(
            {"user": [f"{user.get_username()} is a regulator: share with regulators through an engagement"]}
        )
    perm = Permission.objects.get(content_type__app_label="governance", codename=permission)
    grant, created = DeskGrant.objects.get_or_create(user=user, permission=perm, content_object=desk)
    if created:
        record_event(
            actor=actor, action="access.granted", target=grant, after=_desk_grant_snapshot(grant), reason=reason
        )
    return grant


@audited_change()
def desk_access_revoke(*, actor: Actor, user: AbstractBaseUser, desk: Desk, permission: str, reason: str = "") -> int:
    _require_access_admin(actor)
    grants = list(DeskGrant.objects.filter(user=user, permission__codename=permission, content_object=desk))
    for grant in grants:
        record_event(
            actor=actor, action="access.revoked", target=grant, before=_desk_grant_snapshot(grant), reason=reason
        )
    DeskGrant.objects.filter(pk__in=[g.pk for g in grants]).delete()
    return len(grants)


# --- Policies as code (docs/policies.md) ---------------------------------------------------


def _require_policy_activator(actor: Actor) -> None:
    """Only a person holding ``governance.activate_policyset`` (compliance officers) may change
    the rules in force; a job or command must name that person."""
    if not isinstance(actor, AbstractBaseUser):
        raise NotPermitted("activating a policy set needs a compliance officer, not a system actor")
    if not actor.has_perm("governance.activate_policyset"):
        raise NotPermitted(
            f"{actor.get_username()} may not activate policy sets (needs permission governance.activate_policyset, "
            "held by compliance officers)"
        )


def _policy_set_summary(policy_set: PolicySet) -> dict[str, Any]:
    return {
        "content_hash": policy_set.content_hash,
        "rule_ids": policy_set.rule_ids,
        "files": [{key: f[key] for key in ("directory", "name", "sha256")} for f in policy_set.files],
        "is_active": policy_set.is_active,
    }


@audited_change()
def policy_set_activate(
    *, actor: Actor, directories: Sequence[Path] | None = None, reason: str = ""
) -> tuple[PolicySet, bool]:
    """Load, validate and compile the policy files in ``directories`` (default: the shipped set
    and ``GOVERNANCE_POLICY_DIRS``) and make them the set in force.

    Returns the set and whether anything changed (activating the set already in force does
    nothing). A set that does not load raises ``PolicyLoadError`` naming each file, rule and
    reason, and the set in force stays in force. Audited: ``policy_set.activated`` (with the
    new set's hash as the event's policy-set hash) and ``policy_set.deactivated`` for the
    set it replaces.
    """
    _require_policy_activator(actor)
    compiled = policy_loader.load_directories(directories)
    previous = PolicySet.objects.select_for_update().filter(is_active=True).first()
    if previous is not None and previous.content_hash == compiled.content_hash:
        return previous, False
    now = timezone.now()
    if previous is not None:
        before = _policy_set_summary(previous)
        previous.is_active = False
        previous.save(update_fields=["is_active"])
        record_event(
            actor=actor,
            action="policy_set.deactivated",
            target=previous,
            before=before,
            after=_policy_set_summary(previous),
            reason=reason,
            policy_set_hash=previous.content_hash,
        )
    policy_set = PolicySet.objects.select_for_update().filter(content_hash=compiled.content_hash).first()
    before = _policy_set_summary(policy_set) if policy_set is not None else None
    if policy_set is None:
        # Stored once per content; re-activating an earlier set reuses its row and files.
        policy_set = PolicySet(
            content_hash=compiled.content_hash, files=policy_store.stored_files(compiled), rule_ids=compiled.rule_ids
        )
    policy_set.is_active = True
    policy_set.activated_at = now
    policy_set.activated_by = actor
    policy_set.activated_by_label = actor.get_username()
    policy_set.save()
    record_event(
        actor=actor,
        action="policy_set.activated",
        target=policy_set,
        before=before,
        after={**_policy_set_summary(policy_set), "previous": previous.content_hash if previous else None},
        reason=reason,
        policy_set_hash=policy_set.content_hash,
    )
    policy_store.remember(compiled)
    return policy_set, True


@audited_change()
def policy_evaluate(
    *,
    actor: Actor,
    version: ModelVersion,
    trigger: str,
    at: datetime | None = None,
    risk_assessment: Mapping[str, Any] | None = None,
    findings: Sequence[Mapping[str, Any]] | None = None,
    signoff: Mapping[str, Any] | None = None,
    deployment: Mapping[str, Any] | None = None,
    reason: str = "",
) -> PolicyDecision:
    """Evaluate the set in force for ``trigger`` on ``version`` and store the decision.

    ``actor`` is who asks (the person about to perform the transition, or the sign-off
    workflow's requester or last approver); a user must be able to see the version.
    ``risk_assessment``, ``findings``, ``signoff`` and ``deployment`` fill the input
    document's reserved sections (docs/policies.md) when the caller has them. Raises
    ``NoActivePolicySet`` (409) before any set was activated. The decision and its audit
    event (``policy.decided``, carrying the set's hash) are one transaction.

    The caller acts on ``decision.outcome``: ``allow``, ``deny`` (``decision.reasons()``
    says why) or ``require_approval`` (``decision.required_approvals`` says by whom).
    """
    if isinstance(actor, AbstractBaseUser) and not model_version_list(user=actor).filter(pk=version.pk).exists():
        raise NotPermitted(f"{actor.get_username()} may not evaluate policies on {version} (not in scope)")
    policy_set, compiled = policy_store.require_active_policy_set()
    decided_at = at or timezone.now()
    document = policy_document.build_input_document(
        version=version,
        trigger=trigger,
        requested_by=actor,
        at=decided_at,
        risk_assessment=risk_assessment,
        findings=findings,
        signoff=signoff,
        deployment=deployment,
    )
    evaluation = policy_engine.evaluate(compiled, document)
    decision = PolicyDecision(
        policy_set=policy_set,
        policy_set_hash=policy_set.content_hash,
        trigger=evaluation.trigger,
        model_id=version.model_id,
        version=version,
        outcome=evaluation.outcome,
        results=[result.as_dict() for result in evaluation.rules],
        required_approvals=evaluation.required_approvals,
        input_document=document,
        input_sha256=policy_document.document_sha256(document),
        schema_version=policy_document.SCHEMA_VERSION,
        decided_at=decided_at,
        actor=actor if isinstance(actor, AbstractBaseUser) else None,
        actor_label=actor_label(actor),
    )
    decision.save()
    record_event(
        actor=actor,
        action="policy.decided",
        target=decision,
        after={
            "trigger": decision.trigger,
            "model": decision.model_id,
            "version": decision.version_id,
            "outcome": decision.outcome,
            "rules": {result.id: result.outcome for result in evaluation.rules},
            "input_sha256": decision.input_sha256,
            "schema_version": decision.schema_version,
        },
        reason=reason,
        policy_set_hash=policy_set.content_hash,
    )
    return decision
