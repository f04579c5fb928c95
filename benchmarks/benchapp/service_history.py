"""The product's governed model, ``models_registry.Model``, tracked by the comparison libraries.

For the library variants of ``benchmarks/audit_write_service.py`` only: ``benchmarks/benchapp/models.py``
imports this module when ``BENCH_SERVICE_HISTORY`` is set, which only that script does, so
``audit_write.py``, ``audit_write_bulk.py`` and the product never see it. The product's
code and migrations are untouched: the history models are made here, in the benchmark app
(no migrations; their tables are created with the app's, into the template database).

The history models must exist while the app registry loads, but no library records
anything until :func:`recording` switches it on for its own variant, so the variants that
do not use it run exactly as they would without this module:

* django-auditlog keeps no model of its own per tracked model: ``auditlog.register(Model)``
  on entry, ``auditlog.unregister(Model)`` on exit (its registry connects and disconnects
  its signal receivers).
* django-simple-history: ``simple_history.register`` makes the historical model at import
  and connects its receivers; they are disconnected straight away and connected again only
  inside :func:`recording`.
* django-pghistory (PostgreSQL only): ``pghistory.create_event_model`` makes the event
  model at import and registers its insert and update triggers on ``Model``'s table with
  pgtrigger. ``create_benchmark_tables`` installs every registered trigger, so
  :func:`remove_triggers` takes them out again before the template is copied; they are
  installed by :func:`recording` in the variant's fresh copy of the database.

Each library is given the actor the way it expects it outside a request, once per service
call (:func:`as_actor`), as its middleware would once per request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import simple_history
from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_delete
from simple_history.models import HistoricalRecords

from models_registry.models import Model

LIBRARIES: tuple[str, ...] = ("auditlog", "simple_history") + (("pghistory",) if settings.BENCH_POSTGRES else ())


class SwitchedHistoricalRecords(HistoricalRecords):
    """simple-history's recorder, with its receivers connected only while it is switched on.

    simple-history has a global switch (``SIMPLE_HISTORY_ENABLED``), but its receivers
    still run and check it on every save; disconnected, they cost the other variants nothing.
    """

    for_model: ClassVar[dict[type[models.Model], SwitchedHistoricalRecords]] = {}

    def finalize(self, sender: type[models.Model], **kwargs: Any) -> None:
        super().finalize(sender, **kwargs)
        if sender is self.cls:
            self.for_model[sender] = self
            self.switch(on=False)

    def switch(self, *, on: bool) -> None:
        # The receivers finalize() connects (no many-to-many fields are tracked).
        for signal, receiver in (
            (post_save, self.post_save),
            (pre_delete, self.pre_delete),
            (post_delete, self.post_delete),
        ):
            if on:
                signal.connect(receiver, sender=self.cls, weak=False)
            else:
                signal.disconnect(receiver, sender=self.cls)


# In the benchmark app's models module (app="benchmarks.benchapp" names the module simple-history
# puts the historical model in; its app label, "benchapp", follows from it).
simple_history.register(Model, app="benchmarks.benchapp", records_class=SwitchedHistoricalRecords)
HistoricalModel: type[models.Model] = Model.history.model  # type: ignore[attr-defined]

if settings.BENCH_POSTGRES:
    import pghistory
    import pgtrigger

    # pghistory.track()'s defaults (insert and update events, a full copy of the row, a
    # context row), as for the bare benchmark's PghistoryItem; the app label must be one of
    # ours since Model's app has migrations of its own.
    PghistoryModelEvent: type[models.Model] = pghistory.create_event_model(
        Model,
        abstract=False,
        app_label="benchapp",
        model_name="PghistoryModelEvent",
        obj_field=pghistory.ObjForeignKey(related_name="bench_pghistory_events"),
    )


def _pghistory_triggers() -> list[str]:
    return [f"{model._meta.label}:{trigger.name}" for model, trigger in pgtrigger.registered() if model is Model]


def remove_triggers() -> None:
    """Drop pghistory's triggers on ``Model``'s table (run before the template is copied)."""
    if settings.BENCH_POSTGRES:
        pgtrigger.uninstall(*_pghistory_triggers())


@contextlib.contextmanager
def recording(library: str) -> Iterator[None]:
    """``library`` records ``Model``'s inserts and updates for the duration of the block."""
    if library == "auditlog":
        from auditlog.registry import auditlog

        auditlog.register(Model)
        try:
            yield
        finally:
            auditlog.unregister(Model)
    elif library == "simple_history":
        records = SwitchedHistoricalRecords.for_model[Model]
        records.switch(on=True)
        try:
            yield
        finally:
            records.switch(on=False)
    elif library == "pghistory":
        triggers = _pghistory_triggers()
        pgtrigger.install(*triggers)
        try:
            yield
        finally:
            pgtrigger.uninstall(*triggers)
    else:
        raise ValueError(f"unknown library {library!r}")


@contextlib.contextmanager
def _simple_history_request(user: Any) -> Iterator[None]:
    # What HistoryRequestMiddleware does per request: simple-history takes the user from the
    # request it finds in its context (services get no instance we could set _history_user on).
    HistoricalRecords.context.request = SimpleNamespace(user=user)
    try:
        yield
    finally:
        del HistoricalRecords.context.request


def as_actor(library: str, user: Any) -> contextlib.AbstractContextManager[Any]:
    """Tell ``library`` who makes the changes in the block: one service call, one "request"."""
    if library == "auditlog":
        from auditlog.context import set_actor

        return set_actor(user)
    if library == "simple_history":
        return _simple_history_request(user)
    if library == "pghistory":
        return pghistory.context(user=user.pk)
    raise ValueError(f"unknown library {library!r}")


def history_rows() -> dict[str, int]:
    """Rows in each library's history of ``Model`` (pghistory: its events and its context rows)."""
    from auditlog.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    rows = {
        "auditlog": LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Model)).count(),
        "simple_history": HistoricalModel.objects.count(),  # type: ignore[attr-defined]
    }
    if settings.BENCH_POSTGRES:
        from pghistory.models import Context

        rows["pghistory_events"] = PghistoryModelEvent.objects.count()  # type: ignore[attr-defined]
        rows["pghistory_contexts"] = Context.objects.count()
    return rows
