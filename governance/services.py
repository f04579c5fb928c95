"""Changes to the organisation: desks, members' desks, role groups. Each is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.scope import audited_change
from audit.services import Actor, SystemActor, record_event
from audit.snapshot import snapshot
from governance.errors import NotPermitted
from governance.models import Desk, DeskGrant, Membership
from governance.roles import ROLE_PERMISSIONS, Role

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
    """Create a staff user with roles (groups) and optionally a desk."""
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=True,
        is_superuser=is_superuser,
    )
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


@audited_change()
def user_set_password(*, actor: Actor, user: AbstractBaseUser, password: str) -> None:
    user.set_password(password)
    user.save(update_fields=["password"])
    record_event(actor=actor, action="user.password_set", target=user)


@audited_change()
def login_succeeded(*, user: AbstractBaseUser) -> None:
    """Stamp ``last_login`` and record the login, in one transaction."""
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    record_event(actor=user, action="auth.login_succeeded", target=user)


@audited_change()
def login_failed(*, username: str) -> None:
    """Record a failed login attempt, naming the account if it exists (never the password)."""
    username = (username or "")[: User._meta.get_field(User.USERNAME_FIELD).max_length]
    account = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first() if username else None
    record_event(
        actor=None,
        action="auth.login_failed",
        target=account,
        object_type=User._meta.label_lower,
        after={"username": username, "account_exists": account is not None},
    )

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
    """Let ``user`` see (or change) every model of ``desk``."""
    if permission not in DESK_GRANTABLE:
        raise ValidationError({"permission": [f"must be one of {', '.join(sorted(DESK_GRANTABLE))}"]})
    _require_access_admin(actor)
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
