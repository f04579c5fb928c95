"""Changes to the organisation (desks, members' desks, role groups, users, tokens), the policy
sets, and the sign-off workflow and its findings. Each is one audited transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken

from audit.scope import audited_change
from audit.services import Actor, EventEntry, SystemActor, actor_label, record_event, record_events
from audit.snapshot import snapshot
from governance import notifications
from governance import selectors as signoff_selectors
from governance.errors import Conflict, InvalidTransition, NotPermitted, PolicyDenied
from governance.models import (
    Deployment,
    Desk,
    DeskGrant,
    Finding,
    Membership,
    PolicyDecision,
    PolicySet,
    SignOffRequest,
    SignOffResponse,
)
from governance.policy import document as policy_document
from governance.policy import engine as policy_engine
from governance.policy import loader as policy_loader
from governance.policy import rating as policy_rating
from governance.policy import store as policy_store
from governance.roles import ROLE_PERMISSIONS, Role
from models_registry import lifecycle, segregation
from models_registry.choices import LifecycleStatus
from models_registry.models import ModelVersion
from models_registry.selectors import can_change_model, can_validate, model_version_list

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
    monitoring: Mapping[str, Any] | None = None,
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
        monitoring=monitoring,
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


# --- Sign-off workflow and findings (docs/signoffs.md) -------------------------------------

_EVIDENCE_KEYS = frozenset({"title", "reference"})


def _require_person(actor: Actor, action: str) -> AbstractBaseUser:
    if not isinstance(actor, AbstractBaseUser):
        raise NotPermitted(f"{action} needs a person, not a system actor ({actor_label(actor)})")
    return actor


def _clean_text(value: Any, field: str, *, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError({field: [f"{what} is required"]})
    return text


def _clean_evidence(evidence: Any) -> list[dict[str, str]]:
    """At least one item, each ``{"title", "reference"}`` (a document id, report or link)."""
    if not isinstance(evidence, list | tuple) or not evidence:
        raise ValidationError(
            {"evidence": ["at least one item of evidence is required: [{'title': ..., 'reference': ...}]"]}
        )
    cleaned, problems = [], []
    for index, item in enumerate(evidence):
        if not isinstance(item, Mapping):
            problems.append(f"item {index}: must be an object with 'title' and 'reference'")
            continue
        unknown = sorted(set(item) - _EVIDENCE_KEYS)
        if unknown:
            problems.append(f"item {index}: unknown field(s) {', '.join(unknown)}")
        entry = {}
        for key in ("title", "reference"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"item {index}: '{key}' is required (text)")
            elif len(value) > 500:
                problems.append(f"item {index}: '{key}' is longer than 500 characters")
            else:
                entry[key] = value.strip()
        cleaned.append(entry)
    if problems:
        raise ValidationError({"evidence": problems})
    return cleaned


def _clean_deployment(to_status: str, deployment: Any) -> dict[str, Any] | None:
    """A deployment needs its proposal (phase, capital limit, rollback plan); nothing else has one."""
    if to_status != LifecycleStatus.DEPLOYED:
        if deployment is not None:
            raise ValidationError({"deployment": [f"only a deployment has one, not a move to {to_status}"]})
        return None
    if not isinstance(deployment, Mapping):
        raise ValidationError(
            {"deployment": ["a deployment needs its proposal: phase, capital_limit, rollback_plan (and instruments)"]}
        )
    missing = [key for key in ("phase", "capital_limit", "rollback_plan") if deployment.get(key) in (None, "")]
    if missing:
        raise ValidationError({"deployment": [f"missing: {', '.join(missing)}"]})
    if "monitoring_parameters" in deployment:
        # Per-model overrides of the anomaly rules' parameters: known names, values of the right kind.
        from governance.anomaly_services import clean_monitoring_parameters

        try:
            overrides = clean_monitoring_parameters(deployment["monitoring_parameters"])
        except ValidationError as exc:
            raise ValidationError({"deployment": exc.messages}) from exc
        deployment = {**deployment, "monitoring_parameters": overrides}
    return policy_document.validate_section("deployment", deployment)


def _signoff_section(request: SignOffRequest, responses: Sequence[SignOffResponse]) -> dict[str, Any]:
    """The input document's ``signoff`` section: the request and its approvals of this round."""
    requester = request.requested_by
    return {
        "id": request.pk,
        "transition": request.transition,
        "requested_by": {
            "id": requester.pk,
            "username": requester.get_username(),
            "roles": signoff_selectors.user_roles(requester),
        },
        "justification": request.justification,
        "evidence": [f"{item['title']}: {item['reference']}" for item in request.evidence],
        "submitted_at": request.submitted_at,
        "approvals": [
            {
                "user_id": response.approver_id,
                "username": response.approver_label,
                "roles": response.roles,
                "decided_at": response.decided_at,
            }
            for response in responses
            if response.verdict == SignOffResponse.Verdict.APPROVE
        ],
    }


def _request_snapshot(request: SignOffRequest) -> dict[str, Any]:
    return {
        "model": request.model_id,
        "version": request.version_id,
        "transition": request.transition,
        "status": request.status,
        "round": request.round,
        "requested_by": request.requested_by_id,
        "justification": request.justification,
        "evidence": request.evidence,
        "deployment": request.deployment,
        "version_fingerprint": request.version_fingerprint,
        "required_approvals": request.required_approvals,
        "reasons": request.reasons,
        "latest_decision": request.latest_decision_id,
        "submitted_at": request.submitted_at,
        "due_at": request.due_at,
        "expires_at": request.expires_at,
        "closed_at": request.closed_at,
    }


def _refuse_unless_requestable(decision: PolicyDecision, trigger: str, version: ModelVersion) -> None:
    """At submission: a denial is refused with its reasons; a transition needing no approval
    has nothing to sign off."""
    if decision.outcome == PolicyDecision.Outcome.DENY:
        denied = [item for item in decision.reasons() if item["outcome"] == "deny"]
        raise PolicyDenied(
            f"the policies in force deny {trigger} of {version}: "
            + " ".join(f"{item['id']}: {item['message']}" for item in denied),
            detail={"decision": decision.pk, "reasons": denied},
        )
    if decision.outcome == PolicyDecision.Outcome.ALLOW:
        raise Conflict(
            f"the policies in force require no approval for {trigger} of {version}: "
            "whoever may make the transition makes it directly",
            detail={"decision": decision.pk},
        )


def _check_requester(actor: AbstractBaseUser, version: ModelVersion, action: str) -> ModelVersion:
    if not actor.has_perm("governance.add_signoffrequest"):
        raise NotPermitted(
            f"{actor.get_username()} may not {action} (needs governance.add_signoffrequest: model owners)"
        )
    visible = model_version_list(user=actor).filter(pk=version.pk).first()
    if visible is None:
        raise NotPermitted(f"{actor.get_username()} may not {action} on {version} (not in scope)")
    if not can_change_model(user=actor, model=visible.model):
        raise NotPermitted(
            f"{actor.get_username()} may not {action} on {visible}: only someone who may change the model "
            "(its owner, or a change grant on it or its desk) asks for its sign-off"
        )
    return visible


def signoff_submit(
    *,
    actor: Actor,
    version: ModelVersion,
    to_status: str,
    justification: str,
    evidence: Sequence[Mapping[str, Any]],
    deployment: Mapping[str, Any] | None = None,
) -> SignOffRequest:
    """A model owner asks for ``version`` to move to ``to_status`` (approved, deployed).

    Refused, changing nothing: a transition the state machine does not allow from the
    version's status or that is not a sign-off transition (``InvalidTransition``), someone
    who may not change the model (``NotPermitted``), a missing justification or evidence
    or deployment proposal (``ValidationError``), a request already open for the same
    transition (``Conflict``). The policies in force are evaluated first (the decision is
    stored either way): a denial is refused with the rules' messages (``PolicyDenied``);
    otherwise the request records the approvals they require and the approvers are told.
    """
    actor = _require_person(actor, "submitting a sign-off request")
    version = _check_requester(actor, version, "submit a sign-off request")
    if version.status == to_status == LifecycleStatus.DEPLOYED:
        edge = (version.status, to_status)  # a promotion to the next deployment phase
    else:
        transition = lifecycle.transition_for(version.status, to_status)
        edge = (transition.source.value, transition.target.value)
    if edge not in lifecycle.SIGNOFF_TRANSITIONS and edge != ("deployed", "deployed"):
        gated = ", ".join(f"{a}->{b}" for a, b in sorted(lifecycle.SIGNOFF_TRANSITIONS))
        raise InvalidTransition(
            f"{edge[0]}->{edge[1]} is made directly, not by sign-off; sign-offs are for {gated}",
            detail={
                "from": edge[0],
                "to": edge[1],
                "signoff_transitions": sorted(f"{a}->{b}" for a, b in lifecycle.SIGNOFF_TRANSITIONS),
            },
        )
    justification = _clean_text(justification, "justification", what="a justification")
    cleaned_evidence = _clean_evidence(evidence)
    cleaned_deployment = _clean_deployment(edge[1], deployment)
    _check_deployment_phase(version, edge, cleaned_deployment)
    trigger = (
        f"deployment:{cleaned_deployment['phase']}" if edge == ("deployed", "deployed") else f"{edge[0]}->{edge[1]}"
    )
    open_request = SignOffRequest.objects.filter(
        version=version, to_status=edge[1], status__in=SignOffRequest.OPEN_STATUSES
    ).first()
    if open_request is not None:
        raise Conflict(
            f"sign-off request {open_request.pk} for {trigger} of {version} is already {open_request.status}",
            detail={"request": open_request.pk},
        )
    now = timezone.now()
    draft = SignOffRequest(
        version=version,
        model=version.model,
        from_status=edge[0],
        to_status=edge[1],
        requested_by=actor,
        justification=justification,
        evidence=cleaned_evidence,
        submitted_at=now,
    )
    decision = policy_evaluate(
        actor=actor,
        version=version,
        trigger=trigger,
        at=now,
        signoff=_signoff_section(draft, []),
        deployment=cleaned_deployment,
        reason="sign-off request submitted",
    )
    _refuse_unless_requestable(decision, trigger, version)
    return _signoff_create(actor=actor, draft=draft, decision=decision, deployment=cleaned_deployment)


@audited_change()
def _signoff_create(
    *, actor: AbstractBaseUser, draft: SignOffRequest, decision: PolicyDecision, deployment: dict[str, Any] | None
) -> SignOffRequest:
    version = ModelVersion.objects.select_for_update().select_related("model").get(pk=draft.version_id)
    if version.status != draft.from_status:
        raise InvalidTransition(f"{version} moved to {version.status} meanwhile; submit again")
    draft.deployment = deployment
    draft.version_fingerprint = signoff_selectors.version_fingerprint(version)
    draft.required_approvals = decision.required_approvals
    draft.reasons = decision.reasons()
    draft.latest_decision = decision
    draft.due_at = draft.submitted_at + timedelta(days=settings.GOVERNANCE_SIGNOFF_DUE_DAYS)
    draft.expires_at = draft.submitted_at + timedelta(days=settings.GOVERNANCE_SIGNOFF_EXPIRY_DAYS)
    try:
        with transaction.atomic():
            draft.save()
    except IntegrityError as exc:  # a concurrent submission for the same transition won
        raise Conflict(f"a sign-off request for {draft.transition} of {version} is already open") from exc
    record_event(actor=actor, action="signoff.submitted", target=draft, after=_request_snapshot(draft))
    _notify_approvers(draft)
    return draft


def _notify_approvers(request: SignOffRequest) -> None:
    roles = signoff_selectors.open_approval_roles(request.required_approvals)
    notifications.approvers_asked(request, signoff_selectors.approver_candidates(request=request, roles=roles))


def _locked_request(request: SignOffRequest) -> SignOffRequest:
    return (
        SignOffRequest.objects.select_for_update().select_related("version__model", "requested_by").get(pk=request.pk)
    )


def _check_decidable(request: SignOffRequest, *, at: datetime) -> None:
    if request.status != SignOffRequest.Status.PENDING:
        raise Conflict(
            f"sign-off request {request.pk} is {request.get_status_display().lower()}; "
            "only pending requests are decided"
        )
    if request.expires_at <= at:
        raise Conflict(f"sign-off request {request.pk} expired at {request.expires_at:%Y-%m-%d %H:%M} UTC")


def _check_version_unchanged(request: SignOffRequest) -> None:
    version = request.version
    if version.status != request.from_status:
        raise InvalidTransition(
            f"{version} is now {version.status}, but sign-off request {request.pk} is for {request.transition}: "
            "it can no longer be approved; the requester withdraws it",
            detail={"from": version.status, "to": request.to_status},
        )
    if signoff_selectors.version_fingerprint(version) != request.version_fingerprint:
        raise Conflict(
            f"{version} changed since sign-off request {request.pk} was submitted (artifact, code, parameters or "
            "datasets): approvals would not be for what was submitted; the requester withdraws and submits again"
        )


def signoff_respond(*, actor: Actor, request: SignOffRequest, verdict: str, comment: str) -> SignOffRequest:
    """An approver approves, rejects or asks for changes, with a comment.

    Four eyes: the approver holds a role the request's approval requirements name (for an
    approval, one still missing), is neither the requester nor a developer of the model
    (nor, approving for use, who submitted or validated the version: SOD-2, -3, -6, -8,
    each refusal audited), and answers once per round. An approval on a version that changed
    since submission is refused. When an approval arrives the policies are evaluated again
    with the approvals so far: still missing approvals keep the request pending; a denial
    blocks it with the rules' reasons; an allow makes the transition, as this approver,
    in the same transaction."""
    actor = _require_person(actor, "deciding a sign-off request")
    if verdict not in SignOffResponse.Verdict.values:
        raise ValidationError({"verdict": [f"must be one of {', '.join(SignOffResponse.Verdict.values)}"]})
    comment = _clean_text(comment, "comment", what="a comment")
    visible = signoff_selectors.signoff_request_list(user=actor).filter(pk=request.pk).first()
    if visible is None:
        raise NotPermitted(f"{actor.get_username()} may not decide sign-off request {request.pk} (not in scope)")
    request = SignOffRequest.objects.select_related("version__model", "requested_by").get(pk=request.pk)
    _check_decidable(request, at=timezone.now())
    approving = verdict == SignOffResponse.Verdict.APPROVE
    roles = signoff_selectors.user_roles(actor)
    eligible = (
        signoff_selectors.open_approval_roles(request.required_approvals)
        if approving
        else signoff_selectors.all_approval_roles(request.required_approvals)
    )
    if not set(roles) & eligible:
        raise NotPermitted(
            f"{actor.get_username()} ({', '.join(roles) or 'no role'}) may not {verdict.replace('_', ' ')} sign-off "
            f"request {request.pk}: {'the approvals still missing need' if approving else 'its approvers hold'} "
            f"one of: {', '.join(sorted(eligible)) or 'none'}"
        )
    rule = segregation.signoff_refusal(
        user=actor,
        version=request.version,
        requester_id=request.requested_by_id,
        edge=(request.from_status, request.to_status),
        approving=approving,
    )
    if rule is not None:
        _record_sod_refusal(actor=actor, rule=rule, request=request, verdict=verdict)
        raise NotPermitted(f"{rule.id}: {rule.title}", detail={"rule": rule.id})
    if approving:
        _check_version_unchanged(request)
    return _signoff_record_response(actor=actor, request=request, verdict=verdict, comment=comment, roles=roles)


@audited_change()
def _record_sod_refusal(*, actor: AbstractBaseUser, rule: Any, request: SignOffRequest, verdict: str) -> None:
    record_event(
        actor=actor,
        action="sod.refused",
        target=request,
        after={
            "rule": rule.id,
            "title": rule.title,
            "references": list(rule.references),
            "attempted": f"{verdict} sign-off request {request.pk} ({request.transition})",
        },
    )


@audited_change()
def _signoff_record_response(
    *, actor: AbstractBaseUser, request: SignOffRequest, verdict: str, comment: str, roles: list[str]
) -> SignOffRequest:
    from models_registry import services as registry_services

    request = _locked_request(request)
    now = timezone.now()
    _check_decidable(request, at=now)
    if request.responses.filter(round=request.round, approver=actor).exists():
        raise Conflict(f"{actor.get_username()} already answered sign-off request {request.pk} in this round")
    before = _request_snapshot(request)
    response = SignOffResponse.objects.create(
        request=request,
        round=request.round,
        approver=actor,
        approver_label=actor.get_username(),
        roles=roles,
        verdict=verdict,
        comment=comment,
        decided_at=now,
    )
    record_event(
        actor=actor,
        action=f"signoff.{verdict}",
        target=response,
        after={
            "request": request.pk,
            "round": response.round,
            "verdict": verdict,
            "roles": roles,
            "comment": comment,
            "transition": request.transition,
            "version": request.version_id,
        },
        reason=comment,
    )
    if verdict != SignOffResponse.Verdict.APPROVE:
        request.status = (
            SignOffRequest.Status.REJECTED
            if verdict == SignOffResponse.Verdict.REJECT
            else SignOffRequest.Status.CHANGES_REQUESTED
        )
        if request.status == SignOffRequest.Status.REJECTED:
            request.closed_at = now
        request.save()
        record_event(
            actor=actor,
            action=f"signoff.{request.status}",
            target=request,
            before=before,
            after=_request_snapshot(request),
            reason=comment,
        )
        notifications.requester_told(
            request,
            "was rejected" if verdict == SignOffResponse.Verdict.REJECT else "needs changes",
            f"{actor.get_username()}: {comment}",
        )
        return request

    # The approval: the policies decide again, now, with every approval of this round.
    approvals = signoff_selectors.current_responses(request)
    decision = policy_evaluate(
        actor=actor,
        version=request.version,
        trigger=request.trigger,
        at=now,
        signoff=_signoff_section(request, approvals),
        deployment=request.deployment,
        reason=f"sign-off request {request.pk}: approval by {actor.get_username()}",
    )
    request.latest_decision = decision
    request.required_approvals = decision.required_approvals
    request.reasons = decision.reasons()
    if decision.outcome == PolicyDecision.Outcome.ALLOW:
        approvers = ", ".join(r.approver_label for r in approvals if r.verdict == SignOffResponse.Verdict.APPROVE)
        if not request.is_promotion:
            registry_services.model_version_transition_signed_off(
                actor=actor,
                version=request.version,
                to_status=request.to_status,
                decision=decision,
                reason=f"sign-off request {request.pk} approved by {approvers}",
            )
        if request.to_status == LifecycleStatus.DEPLOYED:
            _deployment_apply_signoff(actor=actor, request=request, at=now)
        request.status, request.closed_at, action = SignOffRequest.Status.APPROVED, now, "signoff.completed"
    elif decision.outcome == PolicyDecision.Outcome.DENY:
        request.status, request.closed_at, action = SignOffRequest.Status.BLOCKED, now, "signoff.blocked"
    else:
        action = "signoff.progressed"
    request.save()
    record_event(
        actor=actor,
        action=action,
        target=request,
        before=before,
        after=_request_snapshot(request),
        policy_set_hash=decision.policy_set_hash,
    )
    if request.status == SignOffRequest.Status.APPROVED:
        notifications.requester_told(request, f"was approved: the version is now {request.to_status}")
    elif request.status == SignOffRequest.Status.BLOCKED:
        notifications.requester_told(
            request,
            "is blocked by the policies in force",
            "\n".join(
                f"{item['id']}: {item['message']} ({'; '.join(item['references'])})"
                for item in request.reasons
                if item["outcome"] == "deny"
            ),
        )
    return request


def _check_request_owner(actor: AbstractBaseUser, request: SignOffRequest, action: str) -> None:
    """The requester, or someone who may change the model, manages a request."""
    if actor.pk == request.requested_by_id:
        return
    visible = model_version_list(user=actor).filter(pk=request.version_id).exists()
    if not (visible and can_change_model(user=actor, model=request.model)):
        raise NotPermitted(
            f"{actor.get_username()} may not {action} sign-off request {request.pk}: only its requester or someone "
            "who may change the model does"
        )


@audited_change()
def signoff_withdraw(*, actor: Actor, request: SignOffRequest, reason: str) -> SignOffRequest:
    """The requester (or someone who may change the model) withdraws an open request."""
    actor = _require_person(actor, "withdrawing a sign-off request")
    reason = _clean_text(reason, "reason", what="a reason")
    request = _locked_request(request)
    _check_request_owner(actor, request, "withdraw")
    if not request.is_open:
        raise Conflict(f"sign-off request {request.pk} is {request.get_status_display().lower()}, not open")
    before = _request_snapshot(request)
    request.status = SignOffRequest.Status.WITHDRAWN
    request.closed_at = timezone.now()
    request.save()
    record_event(
        actor=actor,
        action="signoff.withdrawn",
        target=request,
        before=before,
        after=_request_snapshot(request),
        reason=reason,
    )
    return request


def signoff_amend(
    *,
    actor: Actor,
    request: SignOffRequest,
    justification: str,
    evidence: Sequence[Mapping[str, Any]],
    deployment: Mapping[str, Any] | None = None,
) -> SignOffRequest:
    """After changes were requested, the requester answers with a new justification and
    evidence (and deployment proposal): a new round starts, earlier approvals no longer
    count, and the policies are evaluated again as at submission."""
    actor = _require_person(actor, "amending a sign-off request")
    request = SignOffRequest.objects.select_related("version__model", "requested_by").get(pk=request.pk)
    _check_request_owner(actor, request, "amend")
    if request.status != SignOffRequest.Status.CHANGES_REQUESTED:
        raise Conflict(
            f"sign-off request {request.pk} is {request.get_status_display().lower()}; only a request "
            "whose approvers asked for changes is amended"
        )
    justification = _clean_text(justification, "justification", what="a justification")
    cleaned_evidence = _clean_evidence(evidence)
    cleaned_deployment = _clean_deployment(request.to_status, deployment)
    version = request.version
    if version.status != request.from_status:
        raise InvalidTransition(
            f"{version} is now {version.status}; sign-off request {request.pk} is for {request.transition}"
        )
    now = timezone.now()
    amended = SignOffRequest(
        pk=request.pk,
        version=version,
        model=request.model,
        from_status=request.from_status,
        to_status=request.to_status,
        requested_by=request.requested_by,
        justification=justification,
        evidence=cleaned_evidence,
        deployment=cleaned_deployment,
        submitted_at=request.submitted_at,
    )
    _check_deployment_phase(version, (request.from_status, request.to_status), cleaned_deployment)
    decision = policy_evaluate(
        actor=actor,
        version=version,
        trigger=amended.trigger,
        at=now,
        signoff=_signoff_section(amended, []),
        deployment=cleaned_deployment,
        reason=f"sign-off request {request.pk} amended",
    )
    _refuse_unless_requestable(decision, request.trigger, version)
    return _signoff_apply_amendment(
        actor=actor,
        request=request,
        justification=justification,
        evidence=cleaned_evidence,
        deployment=cleaned_deployment,
        decision=decision,
    )


@audited_change()
def _signoff_apply_amendment(
    *,
    actor: AbstractBaseUser,
    request: SignOffRequest,
    justification: str,
    evidence: list[dict[str, str]],
    deployment: dict[str, Any] | None,
    decision: PolicyDecision,
) -> SignOffRequest:
    request = _locked_request(request)
    if request.status != SignOffRequest.Status.CHANGES_REQUESTED:
        raise Conflict(f"sign-off request {request.pk} is {request.get_status_display().lower()} now")
    before = _request_snapshot(request)
    request.justification = justification
    request.evidence = evidence
    request.deployment = deployment
    request.round += 1
    request.status = SignOffRequest.Status.PENDING
    request.version_fingerprint = signoff_selectors.version_fingerprint(request.version)
    request.required_approvals = decision.required_approvals
    request.reasons = decision.reasons()
    request.latest_decision = decision
    request.save()
    record_event(actor=actor, action="signoff.amended", target=request, before=before, after=_request_snapshot(request))
    _notify_approvers(request)
    return request


@audited_change()
def signoff_expire_due(*, actor: Actor | None = None, at: datetime | None = None) -> list[int]:
    """Close every open request past its expiry (the periodic job; also safe to run by hand).
    Returns the ids closed; each is an audit event and its requester is told."""
    actor = actor or SystemActor("signoff-expiry")
    now = at or timezone.now()
    expired = []
    due = SignOffRequest.objects.select_for_update().select_related("version__model", "requested_by")
    for request in due.filter(status__in=SignOffRequest.OPEN_STATUSES, expires_at__lte=now).order_by("pk"):
        before = _request_snapshot(request)
        request.status = SignOffRequest.Status.EXPIRED
        request.closed_at = now
        request.save()
        record_event(
            actor=actor, action="signoff.expired", target=request, before=before, after=_request_snapshot(request)
        )
        notifications.requester_told(request, f"expired undecided after {settings.GOVERNANCE_SIGNOFF_EXPIRY_DAYS} days")
        expired.append(request.pk)
    return expired


# Findings ------------------------------------------------------------------------------

FINDING_UPDATABLE = frozenset({"status", "due_date", "resolution", "remediation_owner"})


def _finding_snapshot(finding: Finding) -> dict[str, Any]:
    return snapshot(finding)


def _check_finding_manager(actor: AbstractBaseUser, version: ModelVersion, action: str) -> None:
    """The validation function: not a developer of the model and, for validators, assigned to it."""
    if signoff_selectors.is_developer(user=actor, model=version.model):
        raise NotPermitted(
            f"{actor.get_username()} develops {version.model} and may not {action} (validation findings are the "
            "independent validation's)"
        )
    independent_oversight = actor.has_perm("models_registry.oversee_model")
    if not independent_oversight and not can_validate(user=actor, model=version.model):
        raise NotPermitted(f"{actor.get_username()} is not assigned to validate {version.model} and may not {action}")


def _check_remediation_owner(user: AbstractBaseUser, version: ModelVersion) -> None:
    if not user.is_active or not model_version_list(user=user).filter(pk=version.pk).exists():
        raise ValidationError(
            {"remediation_owner": [f"{user.get_username()} cannot see {version} and so cannot remediate it"]}
        )


def _clean_due_date(value: Any) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValidationError({"due_date": ["a date (YYYY-MM-DD) is required"]})
    if value < timezone.now().date():
        raise ValidationError({"due_date": [f"{value} is in the past"]})
    return value


@audited_change()
def finding_raise(
    *,
    actor: Actor,
    version: ModelVersion,
    severity: str,
    title: str,
    description: str,
    remediation_owner: AbstractBaseUser,
    due_date: date,
) -> Finding:
    """A validator (or the risk or compliance function) raises a finding on a version.
    Open high and critical findings block approval and deployment (policy FINDINGS-01)."""
    actor = _require_person(actor, "raising a finding")
    if not actor.has_perm("governance.add_finding"):
        raise NotPermitted(f"{actor.get_username()} may not raise findings (needs governance.add_finding)")
    visible = model_version_list(user=actor).filter(pk=version.pk).first()
    if visible is None:
        raise NotPermitted(f"{actor.get_username()} may not raise findings on {version} (not in scope)")
    _check_finding_manager(actor, visible, "raise findings on it")
    if severity not in Finding.Severity.values:
        raise ValidationError({"severity": [f"must be one of {', '.join(Finding.Severity.values)}"]})
    finding = Finding(
        model=visible.model,
        version=visible,
        severity=severity,
        title=_clean_text(title, "title", what="a title"),
        description=_clean_text(description, "description", what="a description"),
        remediation_owner=remediation_owner,
        due_date=_clean_due_date(due_date),
        raised_by=actor,
        raised_by_label=actor.get_username(),
        raised_at=timezone.now(),
    )
    _check_remediation_owner(remediation_owner, visible)
    finding.full_clean()
    finding.save()
    record_event(actor=actor, action="finding.raised", target=finding, after=_finding_snapshot(finding))
    return finding


def _finding_raise_by_assessment(
    *,
    actor: Actor,
    assessment: Any,
    severity: str,
    title: str,
    description: str,
    remediation_owner: AbstractBaseUser,
    due_date: date,
) -> Finding:
    """A finding the risk assessment ``assessment`` raised by itself (a failed check).

    Only the assessment's completion service calls this, inside its own transaction, so the
    findings and the results that justify them are stored together or not at all. No person
    raised it: ``raised_by`` is null and ``raised_by_label`` names the job. The people rules of
    ``finding_raise`` (validator assignment, independence) do not apply to a computation; who
    may request the assessment was checked when it was requested."""
    if severity not in Finding.Severity.values:
        raise ValidationError({"severity": [f"must be one of {', '.join(Finding.Severity.values)}"]})
    version = assessment.version
    finding = Finding(
        model_id=version.model_id,
        version=version,
        assessment=assessment,
        severity=severity,
        title=_clean_text(title, "title", what="a title"),
        description=_clean_text(description, "description", what="a description"),
        remediation_owner=remediation_owner,
        due_date=_clean_due_date(due_date),
        raised_by=None,
        raised_by_label=f"risk assessment {assessment.pk}",
        raised_at=timezone.now(),
    )
    finding.full_clean()
    finding.save()
    record_event(actor=actor, action="finding.raised", target=finding, after=_finding_snapshot(finding))
    return finding


@audited_change()
def finding_update(*, actor: Actor, finding: Finding, changes: Mapping[str, Any], reason: str = "") -> Finding:
    """Move a finding along (open -> in remediation -> closed, or reopen) or change its due date,
    resolution or remediation owner.

    The remediation owner, the model's owner or developers and the validation function mark
    progress (``in_remediation``, back to ``open``); only the validation function (holders of
    ``close_finding`` who did not develop the model) closes a finding, with a resolution, and
    changes its due date or remediation owner. Closing or reopening needs a reason."""
    actor = _require_person(actor, "changing a finding")
    unknown = sorted(set(changes) - FINDING_UPDATABLE)
    if unknown:
        raise ValidationError({field: ["cannot be changed"] for field in unknown})
    finding = Finding.objects.select_for_update().select_related("version__model").get(pk=finding.pk)
    version = finding.version
    if (
        not actor.has_perm("governance.change_finding")
        or not model_version_list(user=actor).filter(pk=version.pk).exists()
    ):
        raise NotPermitted(f"{actor.get_username()} may not change finding {finding.pk}")
    before = _finding_snapshot(finding)
    status = changes.get("status", finding.status)
    if status not in Finding.Status.values:
        raise ValidationError({"status": [f"must be one of {', '.join(Finding.Status.values)}"]})
    closes = status == Finding.Status.CLOSED and finding.status != Finding.Status.CLOSED
    reopens = finding.status == Finding.Status.CLOSED and status != Finding.Status.CLOSED
    manages = closes or reopens or "due_date" in changes or "remediation_owner" in changes
    if manages:
        if not actor.has_perm("governance.close_finding"):
            raise NotPermitted(
                f"{actor.get_username()} may not close or reopen findings or change their due date or owner "
                "(needs governance.close_finding: the validation function)"
            )
        _check_finding_manager(actor, version, "close, reopen or reassign its findings")
        if (closes or reopens) and not reason.strip():
            raise ValidationError({"reason": ["closing or reopening a finding needs a reason"]})
    if "due_date" in changes:
        finding.due_date = _clean_due_date(changes["due_date"])
    if "remediation_owner" in changes:
        _check_remediation_owner(changes["remediation_owner"], version)
        finding.remediation_owner = changes["remediation_owner"]
    if "resolution" in changes:
        finding.resolution = str(changes["resolution"] or "").strip()
    if closes:
        if not finding.resolution:
            raise ValidationError({"resolution": ["a closed finding states how it was resolved"]})
        finding.closed_at, finding.closed_by = timezone.now(), actor
    elif reopens:
        finding.closed_at, finding.closed_by = None, None
    finding.status = status
    after = _finding_snapshot(finding)
    if after == before:
        return finding
    finding.full_clean()
    finding.save()
    action = "finding.closed" if closes else "finding.reopened" if reopens else "finding.updated"
    record_event(
        actor=actor, action=action, target=finding, before=before, after=_finding_snapshot(finding), reason=reason
    )
    return finding


# Risk-assessment ratings ------------------------------------------------------------------


def risk_assessment_rating(
    *,
    actor: Actor,
    version: ModelVersion,
    risk_assessment: Mapping[str, Any],
    at: datetime | None = None,
) -> dict[str, Any] | None:
    """Rate a finished risk assessment by the policies in force (trigger ``assessment``):
    ``{"rating": green|amber|red, "rules": [...], "decision": id, "policy_set_hash"}``, or
    None when no set is in force. The decision is stored and audited like every other, in
    the caller's transaction (the assessment's completion), so the rating and its record
    stand or fall together."""
    if policy_store.active_policy_set() is None:
        return None
    decision = policy_evaluate(
        actor=actor,
        version=version,
        trigger="assessment",
        at=at,
        risk_assessment=risk_assessment,
        reason=f"rating of risk assessment {risk_assessment.get('id')}",
    )
    rating, rules = policy_rating.rate(decision.results)
    return {"rating": rating, "rules": rules, "decision": decision.pk, "policy_set_hash": decision.policy_set_hash}


# Deployments: phases, kill switch, rollback (docs/deployments.md) ---------------------------


def _live_deployment(model_id: int, *, lock: bool = False) -> Deployment | None:
    qs = Deployment.objects.filter(model_id=model_id, status__in=Deployment.LIVE_STATUSES)
    return (qs.select_for_update() if lock else qs).select_related("version", "model").first()


def _check_deployment_phase(version: ModelVersion, edge: tuple[str, str], deployment: Mapping[str, Any] | None) -> None:
    """Phases go in the configured order: a first deployment starts in the first phase; a
    promotion asks for the phase after the live one; a reinstatement returns to the phase the
    kill switch stopped, once a compliance officer lifted it."""
    if edge[1] != LifecycleStatus.DEPLOYED or deployment is None:
        return
    phases = list(settings.GOVERNANCE_DEPLOYMENT_PHASES)
    phase = deployment["phase"]
    if phase not in phases:
        raise ValidationError({"deployment": [f"unknown phase {phase!r}; phases are {', '.join(phases)}"]})
    live = _live_deployment(version.model_id)
    if edge == (LifecycleStatus.APPROVED, LifecycleStatus.DEPLOYED):
        if phase != phases[0]:
            raise ValidationError({"deployment": [f"a first deployment starts in phase {phases[0]}, not {phase}"]})
        return
    if live is None or live.version_id != version.pk:
        raise Conflict(f"{version} has no live deployment to {'promote' if edge[0] == edge[1] else 'reinstate'}")
    if edge == (LifecycleStatus.DEPLOYED, LifecycleStatus.DEPLOYED):
        if live.status != Deployment.Status.ACTIVE:
            raise Conflict(f"{version} is {live.get_status_display().lower()}: a suspended deployment is not promoted")
        current = phases.index(live.phase) if live.phase in phases else len(phases) - 1
        if current + 1 >= len(phases):
            raise Conflict(f"{version} is already in the last phase ({live.phase})")
        if phase != phases[current + 1]:
            raise ValidationError(
                {
                    "deployment": [
                        f"{version} is in phase {live.phase}: the next phase is {phases[current + 1]}, not {phase}"
                    ]
                }
            )
        return
    # suspended -> deployed: a reinstatement.
    if live.kill_switch_engaged:
        raise Conflict(
            f"the kill switch of {version.model} is engaged ({live.kill_reason}); a compliance officer lifts it first"
        )
    if phase != live.phase:
        raise ValidationError({"deployment": [f"a reinstatement returns to phase {live.phase}, not {phase}"]})


def _deployment_snapshot(deployment: Deployment) -> dict[str, Any]:
    return snapshot(deployment)


def _invalidate_trading_permission(model_id: int) -> None:
    transaction.on_commit(lambda: signoff_selectors.forget_trading_permission(model_id))


def _deployment_apply_signoff(*, actor: AbstractBaseUser, request: SignOffRequest, at: datetime) -> Deployment:
    """The deployment side of a completed deployment sign-off, in its transaction: open the
    deployment (ending a live one of another version, whose version is suspended), move it
    to the next phase, or make a reinstated one active again."""
    from models_registry import services as registry_services

    proposal = request.deployment or {}
    target = proposal.get("rollback_target") or None
    limits = {
        "phase": proposal["phase"],
        "capital_limit": Decimal(proposal["capital_limit"]),
        "currency": proposal.get("currency") or settings.GOVERNANCE_BASE_CURRENCY,
        "instruments": list(proposal.get("instruments") or []),
        "max_daily_loss": Decimal(proposal["max_daily_loss"]) if proposal.get("max_daily_loss") else None,
        "rollback_plan": proposal["rollback_plan"],
        "rollback_target_id": target["version_id"] if target else None,
        "monitoring_parameters": dict(proposal.get("monitoring_parameters") or {}),
    }
    live = _live_deployment(request.model_id, lock=True)
    if live is not None and live.version_id == request.version_id:
        before = _deployment_snapshot(live)
        if request.is_promotion:
            live.phase_started_at = at
        for field, value in limits.items():
            setattr(live, field, value)
        live.status = Deployment.Status.ACTIVE
        live.signoff = request
        live.save()
        action = "deployment.promoted" if request.is_promotion else "deployment.reinstated"
        record_event(actor=actor, action=action, target=live, before=before, after=_deployment_snapshot(live))
        _invalidate_trading_permission(request.model_id)
        return live
    if live is not None:
        before = _deployment_snapshot(live)
        live.status, live.ended_at = Deployment.Status.ENDED, at
        live.save()
        record_event(
            actor=actor,
            action="deployment.ended",
            target=live,
            before=before,
            after=_deployment_snapshot(live),
            reason=f"replaced by {request.version} (sign-off request {request.pk})",
        )
        if live.version.status == LifecycleStatus.DEPLOYED:
            registry_services.model_version_transition_for_deployment(
                actor=actor, version=live.version, to_status="suspended", reason=f"replaced by {request.version}"
            )
    deployment = Deployment.objects.create(
        model_id=request.model_id,
        version_id=request.version_id,
        phase_started_at=at,
        started_at=at,
        signoff=request,
        **limits,
    )
    record_event(actor=actor, action="deployment.started", target=deployment, after=_deployment_snapshot(deployment))
    _invalidate_trading_permission(request.model_id)
    return deployment


def _deployment_actor_check(actor: Actor, model: Any, permission: str, action: str) -> None:
    if not isinstance(actor, AbstractBaseUser):
        return  # the monitoring jobs (anomaly rules) act as system actors
    if not actor.has_perm(f"governance.{permission}"):
        raise NotPermitted(f"{actor.get_username()} may not {action} (needs governance.{permission})")
    if not model_version_list(user=actor).filter(model_id=model.pk).exists():
        raise NotPermitted(f"{actor.get_username()} may not {action} on {model} (not in scope)")


@audited_change()
def kill_switch_engage(*, actor: Actor, model: Any, reason: str, drill: bool = False) -> Deployment:
    """Stop a model trading at once: its live deployment is suspended, its version moves to
    suspended, and the trading permission answers not allowed from this commit on. Anyone
    holding ``engage_killswitch`` who sees the model, or a monitoring job, may pull it;
    pulling it again changes nothing. ``drill``: pulled to test the kill switch (RTS 6
    Art. 12), which stops the model all the same; recorded on the deployment and in the
    event, and counted apart from real stops by the annual self-assessment."""
    from models_registry import services as registry_services

    _deployment_actor_check(actor, model, "engage_killswitch", "pull the kill switch")
    if not isinstance(drill, bool):
        raise ValidationError({"drill": ["must be true or false"]})
    reason = _clean_text(reason, "reason", what="a reason")
    deployment = _live_deployment(model.pk, lock=True)
    if deployment is None:
        raise Conflict(f"{model} has no live deployment: there is nothing to stop")
    if deployment.kill_switch_engaged:
        return deployment
    before = _deployment_snapshot(deployment)
    now = timezone.now()
    deployment.status = Deployment.Status.SUSPENDED
    deployment.kill_switch_engaged = True
    deployment.kill_reason, deployment.killed_at, deployment.killed_by_label = reason, now, actor_label(actor)
    deployment.kill_drill = drill
    deployment.save()
    record_event(
        actor=actor,
        action="kill_switch.engaged",
        target=deployment,
        before=before,
        after=_deployment_snapshot(deployment),
        reason=reason,
    )
    version = deployment.version
    if version.status == LifecycleStatus.DEPLOYED:
        registry_services.model_version_transition_for_deployment(
            actor=actor, version=version, to_status="suspended", reason=f"kill switch: {reason}"
        )
    _invalidate_trading_permission(model.pk)
    return deployment


@audited_change()
def kill_switch_lift(*, actor: Actor, model: Any, reason: str) -> Deployment:
    """A compliance officer lifts an engaged kill switch. The model stays suspended: it
    trades again only after a reinstatement sign-off (suspended -> deployed) allowed by the
    policies, or a rollback."""
    actor = _require_person(actor, "lifting a kill switch")
    _deployment_actor_check(actor, model, "lift_killswitch", "lift a kill switch")
    reason = _clean_text(reason, "reason", what="a reason")
    deployment = _live_deployment(model.pk, lock=True)
    if deployment is None or not deployment.kill_switch_engaged:
        raise Conflict(f"the kill switch of {model} is not engaged")
    before = _deployment_snapshot(deployment)
    deployment.kill_switch_engaged = False
    deployment.save()
    record_event(
        actor=actor,
        action="kill_switch.lifted",
        target=deployment,
        before=before,
        after=_deployment_snapshot(deployment),
        reason=reason,
    )
    _invalidate_trading_permission(model.pk)
    return deployment


@audited_change()
def deployment_rollback(*, actor: Actor, model: Any, reason: str) -> Deployment:
    """Return a model to the rollback target its deployment's sign-off approved, in one
    action: the live deployment ends as rolled back (its version suspended) and the target is
    deployed in the same phase with the same limits. Refused without a target, or when the
    target can no longer be deployed (retired, rejected)."""
    from models_registry import services as registry_services

    _deployment_actor_check(actor, model, "rollback_deployment", "roll a deployment back")
    reason = _clean_text(reason, "reason", what="a reason")
    live = _live_deployment(model.pk, lock=True)
    if live is None:
        raise Conflict(f"{model} has no live deployment to roll back")
    if live.rollback_target_id is None:
        raise Conflict(
            f"the deployment of {live.version} names no rollback target; its rollback plan: {live.rollback_plan}"
        )
    target = ModelVersion.objects.select_for_update().get(pk=live.rollback_target_id)
    if target.status not in (LifecycleStatus.APPROVED, LifecycleStatus.SUSPENDED):
        raise Conflict(f"the rollback target {target} is {target.status} and cannot be deployed")
    now = timezone.now()
    before = _deployment_snapshot(live)
    live.status, live.ended_at = Deployment.Status.ROLLED_BACK, now
    live.save()
    record_event(
        actor=actor,
        action="deployment.rolled_back",
        target=live,
        before=before,
        after=_deployment_snapshot(live),
        reason=reason,
    )
    if live.version.status == LifecycleStatus.DEPLOYED:
        registry_services.model_version_transition_for_deployment(
            actor=actor, version=live.version, to_status="suspended", reason=f"rolled back to {target}: {reason}"
        )
    registry_services.model_version_transition_for_deployment(
        actor=actor, version=target, to_status="deployed", reason=f"rollback from {live.version}: {reason}"
    )
    restored = Deployment.objects.create(
        model_id=model.pk,
        version=target,
        phase=live.phase,
        phase_started_at=now,
        capital_limit=live.capital_limit,
        currency=live.currency,
        instruments=live.instruments,
        max_daily_loss=live.max_daily_loss,
        rollback_plan=f"Restored by rollback from {live.version}; its plan: {live.rollback_plan}",
        started_at=now,
    )
    record_event(
        actor=actor, action="deployment.started", target=restored, after=_deployment_snapshot(restored), reason=reason
    )
    _invalidate_trading_permission(model.pk)
    return restored
