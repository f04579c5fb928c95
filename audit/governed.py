"""Governed models: no write to them skips the audit log.

Two kinds of governed model:

* **service-only** (the inventory and the organisation: models, versions, datasets,
  desks, memberships): rows are written only inside ``audit.scope.audited_change()``,
  that is by services, which record the events. A save, delete, queryset ``update()``,
  ``bulk_create()`` or ``bulk_update()`` anywhere else is refused before it reaches the
  database, and a service that writes a row without recording its event is rolled back.
* **recorded** (Django's ``User`` and ``Group`` and their permission and group links):
  Django itself writes them too (``createsuperuser``, ``changepassword``, the user and
  group admin), so a write outside a service is recorded there and then, one event per
  row, attributed to the request's user or to the command. Queryset ``update()`` and the
  bulk methods, which send no signals and so could not be recorded per row, are refused
  outside services.

The links of a many-to-many field (e.g. ``auth_user_groups``) may be written only through
the relation's manager (``user.groups.add()``), which is recorded, or by a service;
writing the link table directly is refused.

Known limit: raw SQL and a model's ``_base_manager`` bypass the ORM checks; the
database-level triggers protect the audit tables themselves, not the governed tables.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from audit import context
from audit.scope import UnauditedWriteError, in_audited_change, note_written
from audit.snapshot import diff, snapshot

SERVICE_ONLY = "service-only"
RECORDED = "recorded"

_registry: dict[type[models.Model], str] = {}
# Link tables of governed many-to-many fields -> (owning model, field name).
_links: dict[type[models.Model], tuple[type[models.Model], str]] = {}
# Fields never copied into events (a password hash is a secret, even hashed).
_SECRET_FIELDS = frozenset({"password"})
# The link table a relation manager is writing right now; its direct writes are allowed.
_link_in_progress: ContextVar[type[models.Model] | None] = ContextVar("audit_link_in_progress", default=None)


def governed_models() -> dict[type[models.Model], str]:
    """Every governed model and its kind, for checks and tests."""
    return dict(_registry)


def governed_links() -> dict[type[models.Model], tuple[type[models.Model], str]]:
    return dict(_links)


def _refuse(model: type[models.Model], operation: str) -> UnauditedWriteError:
    kind = _registry.get(model)
    where = (
        "its service (which records the audit event)"
        if kind == SERVICE_ONLY
        else "a service, the relation's manager or a per-row save (each recorded in the audit log)"
    )
    return UnauditedWriteError(f"{operation} on {model._meta.label} is refused: it may be changed only through {where}")


class GovernedQuerySet(models.QuerySet):
    """Bulk writes send no per-row signals, so they are allowed only inside a service,
    where the rows they touch are noted and must each get an audit event. For a link
    table, the rows noted are the owners' (a user whose groups changed)."""

    def _note(self, rows: Iterable[Any]) -> None:
        """Note rows (instances or primary keys) as written in the current change."""
        if self.model in _links:
            owner_model, field_name = _links[self.model]
            owner_fk = owner_model._meta.get_field(field_name).m2m_field_name()
            for row in rows:
                if not isinstance(row, models.Model):
                    row = self.model._base_manager.using(self.db).get(pk=row)
                note_written(owner_model._meta.label_lower, getattr(row, f"{owner_fk}_id"))
            return
        label = self.model._meta.label_lower
        for row in rows:
            note_written(label, row.pk if isinstance(row, models.Model) else row)

    def _allowed(self) -> bool:
        return in_audited_change() or _link_in_progress.get() is self.model

    def update(self, **kwargs: Any) -> int:
        if not in_audited_change():
            raise _refuse(self.model, "queryset update()")
        pks = list(self.values_list("pk", flat=True))
        self._note(pks)
        return models.QuerySet.update(self.model._base_manager.using(self.db).filter(pk__in=pks), **kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        # Refused before the deletion opens its transaction, so the caller's stays usable;
        # deletions that cascade here from elsewhere are refused per row by the signals.
        if self.model in _links:
            if not self._allowed():
                raise _refuse(self.model, "queryset delete()")
            if _link_in_progress.get() is not self.model:
                self._note(list(self))
        elif _registry.get(self.model) == SERVICE_ONLY and not in_audited_change():
            raise _refuse(self.model, "queryset delete()")
        return super().delete()

    def bulk_create(self, objs: Iterable[models.Model], *args: Any, **kwargs: Any) -> list[models.Model]:
        if not self._allowed():
            raise _refuse(self.model, "bulk_create()")
        created = super().bulk_create(objs, *args, **kwargs)
        if _link_in_progress.get() is self.model:
            return created  # the relation manager's m2m_changed signal notes or records it
        if self.model not in _links and any(obj.pk is None for obj in created):
            raise UnauditedWriteError(f"bulk_create() on {self.model._meta.label} returned rows without keys")
        self._note(created)
        return created

    def bulk_update(self, objs: Iterable[models.Model], *args: Any, **kwargs: Any) -> int:
        if not in_audited_change():
            raise _refuse(self.model, "bulk_update()")
        objs = list(objs)
        self._note(objs)
        return super().bulk_update(objs, *args, **kwargs)


def _guard_link_model(link: type[models.Model]) -> None:
    """Django sends no save or delete signals for auto-created link models, so their own
    ``save()`` and ``delete()`` carry the check."""
    original_save, original_delete = link.save, link.delete

    def save(self: models.Model, *args: Any, **kwargs: Any) -> None:
        if not in_audited_change() and _link_in_progress.get() is not link:
            raise _refuse(link, "a direct write to the link table")
        original_save(self, *args, **kwargs)
        if in_audited_change():
            link._default_manager.get_queryset()._note([self])

    def delete(self: models.Model, *args: Any, **kwargs: Any) -> Any:
        if not in_audited_change() and _link_in_progress.get() is not link:
            raise _refuse(link, "a direct write to the link table")
        if in_audited_change():
            link._default_manager.get_queryset()._note([self])
        return original_delete(self, *args, **kwargs)

    link.save = save  # type: ignore[method-assign]
    link.delete = delete  # type: ignore[method-assign]


def _govern_manager(model: type[models.Model]) -> None:
    """Give a model we do not define (Django's User, Group, link tables) the governed queryset.

    The default manager's class is swapped for a subclass, so that relation managers
    built from it (``group.user_set``) are governed too; it deconstructs as its parent, so
    migrations see no change.
    """
    manager = model._default_manager
    if isinstance(manager.get_queryset(), GovernedQuerySet):
        return
    parent = type(manager)
    queryset_class = type(
        f"Governed{manager._queryset_class.__name__}", (GovernedQuerySet, manager._queryset_class), {}
    )

    def deconstruct(self: models.Manager) -> tuple[Any, ...]:
        return (False, f"{parent.__module__}.{parent.__qualname__}", None, *self._constructor_args)

    def equals(self: models.Manager, other: object) -> bool:
        return isinstance(other, parent) and self._constructor_args == other._constructor_args

    manager.__class__ = type(
        f"Governed{parent.__name__}",
        (parent,),
        {
            "_queryset_class": queryset_class,
            "deconstruct": deconstruct,
            "__eq__": equals,
            "__hash__": parent.__hash__,
            "__module__": parent.__module__,
        },
    )


def _current_actor() -> Any:
    user = context.current_user()
    if user is not None and not isinstance(user, AnonymousUser) and user.is_authenticated:
        return user
    from audit.services import SystemActor

    return SystemActor(_command_label())


def _command_label() -> str:
    argv = sys.argv
    if argv and Path(argv[0]).name == "manage.py" and len(argv) > 1:
        return f"manage.py {argv[1]}"
    return "unattributed"


def _public_snapshot(instance: models.Model) -> dict[str, Any]:
    data = snapshot(instance)
    for name in _SECRET_FIELDS & data.keys():
        data[name] = "(set)" if data[name] else ""
    return data


def _record(*, action: str, target: models.Model | None = None, **kwargs: Any) -> None:
    from audit.services import record_event

    with transaction.atomic():
        record_event(actor=_current_actor(), action=action, target=target, **kwargs)


# Service-only models -------------------------------------------------------------------


def _guard_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if not in_audited_change():
        raise _refuse(sender, "save()")


def _guard_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if not in_audited_change():
        raise _refuse(sender, "delete()")


def _note_row(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    note_written(sender._meta.label_lower, instance.pk)


# Recorded models -----------------------------------------------------------------------


def _remember_before(sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any) -> None:
    if in_audited_change() or instance._state.adding:
        return
    stored = sender._base_manager.using(instance._state.db).filter(pk=instance.pk).first()
    instance._audit_before = _public_snapshot(stored) if stored is not None else None  # type: ignore[attr-defined]
    instance._audit_secrets_before = _secrets(stored) if stored is not None else {}  # type: ignore[attr-defined]


def _secrets(instance: models.Model) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in _SECRET_FIELDS if hasattr(instance, name)}


def _record_save(sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any) -> None:
    if in_audited_change():
        note_written(sender._meta.label_lower, instance.pk)
        return
    after = _public_snapshot(instance)
    before = None if created else getattr(instance, "_audit_before", None)
    secrets_before = getattr(instance, "_audit_secrets_before", {})
    for name, value in _secrets(instance).items():
        if not created and name in secrets_before and secrets_before[name] != value:
            after[name] = "(changed)"  # that it changed is the fact worth keeping, never the hash
    if not created and before is not None and not diff(before, after):
        return
    label = sender._meta.label_lower
    _record(action=f"{label}.{'created' if created else 'updated'}", target=instance, before=before, after=after)


def _record_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if in_audited_change():
        note_written(sender._meta.label_lower, instance.pk)
        return
    _record(action=f"{sender._meta.label_lower}.deleted", target=instance, before=_public_snapshot(instance))


# Links of many-to-many fields ---------------------------------------------------------


def _link_owners(
    link: type[models.Model], instance: models.Model, reverse: bool, pk_set: set[Any] | None
) -> list[models.Model]:
    owner_model, field_name = _links[link]
    if not reverse:
        return [instance]
    if pk_set is None:  # reverse clear: every owner linked to this object
        field = owner_model._meta.get_field(field_name)
        related_fk = field.m2m_reverse_field_name()
        owner_fk = field.m2m_field_name()
        pk_set = set(link._default_manager.filter(**{related_fk: instance.pk}).values_list(f"{owner_fk}_id", flat=True))
    return list(owner_model._base_manager.filter(pk__in=pk_set))


def _on_link_change(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    reverse: bool,
    model: type[models.Model],
    pk_set: set[Any] | None,
    **kwargs: Any,
) -> None:
    if sender not in _links:
        return
    owner_model, field_name = _links[sender]
    phase, _, operation = action.partition("_")
    if phase == "pre":
        _link_in_progress.set(sender)
        if operation == "clear":
            owners = _link_owners(sender, instance, reverse, None)
            instance._audit_cleared = {  # type: ignore[attr-defined]
                owner.pk: sorted(getattr(owner, field_name).values_list("pk", flat=True)) for owner in owners
            }
        return
    _link_in_progress.set(None)
    if operation == "clear":
        cleared: dict[Any, list[Any]] = getattr(instance, "_audit_cleared", {})
        owners = list(owner_model._base_manager.filter(pk__in=cleared))
    else:
        owners = _link_owners(sender, instance, reverse, pk_set)
    if in_audited_change():
        for owner in owners:
            note_written(owner_model._meta.label_lower, owner.pk)
        return
    label = owner_model._meta.label_lower
    for owner in owners:
        if operation == "clear":
            change = {"removed": cleared.get(owner.pk, [])}
        elif reverse:
            change = {"added" if operation == "add" else "removed": [instance.pk]}
        else:
            change = {"added" if operation == "add" else "removed": sorted(pk_set or ())}
        if any(change.values()):
            _record(
                action=f"{label}.{field_name}.{'added' if operation == 'add' else 'removed'}",
                target=owner,
                after={field_name: change, "now": sorted(getattr(owner, field_name).values_list("pk", flat=True))},
            )


# Registration --------------------------------------------------------------------------


def _connect(signal: Any, receiver: Callable[..., None], sender: type[models.Model], name: str) -> None:
    signal.connect(receiver, sender=sender, weak=False, dispatch_uid=f"audit.governed.{name}.{sender._meta.label}")


def govern(model: type[models.Model]) -> None:
    """Make ``model`` service-only. Its default manager must use ``GovernedQuerySet``."""
    if not isinstance(model._default_manager.get_queryset(), GovernedQuerySet):
        raise TypeError(f"{model._meta.label}'s default manager must use audit.governed.GovernedQuerySet")
    _registry[model] = SERVICE_ONLY
    _connect(pre_save, _guard_save, model, "guard_save")
    _connect(pre_delete, _guard_delete, model, "guard_delete")
    _connect(post_save, _note_row, model, "note_save")
    _connect(post_delete, _note_row, model, "note_delete")


def govern_recorded(model: type[models.Model], *, links: Iterable[str] = ()) -> None:
    """Record every write to ``model`` (and to its named many-to-many ``links``) outside services."""
    _govern_manager(model)
    _registry[model] = RECORDED
    _connect(pre_save, _remember_before, model, "remember_before")
    _connect(post_save, _record_save, model, "record_save")
    _connect(post_delete, _record_delete, model, "record_delete")
    for field_name in links:
        link = model._meta.get_field(field_name).remote_field.through
        _links[link] = (model, field_name)
        _govern_manager(link)
        _guard_link_model(link)
        _connect(m2m_changed, _on_link_change, link, "link_change")
