"""record_events: many events under one head lock, exactly as many record_event calls would write them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from audit import merkle, services
from audit.models import Event, Head, TreeNode
from audit.scope import audited_change, note_written
from audit.services import EventEntry, SystemActor, record_event, record_events
from audit.verify import verify_log

ACTOR = SystemActor("test")
FROZEN = dt.datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=dt.UTC)


def _entries(n: int, start: int = 0) -> list[EventEntry]:
    return [
        {
            "action": "test.bulk_updated",
            "object_type": "x",
            "object_id": start + i,
            "before": {"i": start + i, "price": "1.00", "big": 2**60},
            "after": {"i": start + i, "price": "2.00", "big": 2**60, "f": 0.1},
            "reason": "bulk repricing",
        }
        for i in range(n)
    ]


def _size() -> int:
    """Events already in the log (migrations record the role sync)."""
    return Head.objects.get().size if Head.objects.exists() else 0


def _log_state() -> tuple[list[tuple], list[tuple], tuple]:
    events = list(Event.objects.order_by("seq").values_list("seq", "leaf_hash", "prev_hash", "entry_hash"))
    nodes = list(TreeNode.objects.order_by("level", "index").values_list("level", "index", "hash"))
    head = Head.objects.values_list("size", "last_entry_hash", "frontier").get()
    return events, nodes, head


@pytest.fixture
def frozen_now(monkeypatch):
    """One timestamp for every event, so batched and one-by-one appends can be compared byte for byte."""
    monkeypatch.setattr(services.timezone, "now", lambda: FROZEN)


@pytest.mark.django_db
def test_a_batch_writes_what_one_by_one_calls_write(frozen_now):
    # Start from a size that is not a power of two, so the batch folds into an uneven frontier,
    # and write more events than one INSERT statement carries on either backend.
    with transaction.atomic():
        for i in range(3 if _size() % 2 == 0 else 2):
            record_event(actor=ACTOR, action="test.event", object_type="x", object_id=f"seed-{i}")
    first = _size()
    entries = _entries(613)

    with transaction.atomic():
        savepoint = transaction.savepoint()
        returned = record_events(actor=ACTOR, entries=entries)
        batched = _log_state()
        transaction.savepoint_rollback(savepoint)
        for entry in entries:
            record_event(actor=ACTOR, **entry)
        one_by_one = _log_state()

    assert batched == one_by_one
    events, _, (size, last, _) = batched
    assert first % 2 == 1
    assert [e[0] for e in events] == list(range(1, first + 613 + 1))
    assert size == first + 613
    assert last == events[-1][3]
    assert [(e.seq, e.entry_hash) for e in returned] == [(e[0], e[3]) for e in events[first:]]
    result = verify_log()
    assert result.ok, result.problems
    leaves = [bytes.fromhex(e[1]) for e in events]
    assert result.root == merkle.MemoryTree(leaves).root().hex()


@pytest.mark.django_db
def test_returned_events_are_the_stored_rows():
    with transaction.atomic():
        returned = record_events(actor=ACTOR, entries=_entries(5, start=10))
    for event in returned:
        stored = Event.objects.get(seq=event.seq)
        assert not event._state.adding
        for field in ("timestamp", "actor_label", "object_id", "before", "after", "reason", "leaf_hash", "entry_hash"):
            assert getattr(event, field) == getattr(stored, field), field
    assert [e.object_id for e in returned] == [str(i) for i in range(10, 15)]


@pytest.mark.django_db
def test_batches_and_single_events_interleave_into_one_dense_verifiable_log():
    for round_ in range(4):
        with transaction.atomic():
            record_events(actor=ACTOR, entries=_entries(round_ * 7 + 1, start=round_ * 100))
        with transaction.atomic():
            record_event(actor=ACTOR, action="test.event", object_type="x", object_id=round_)
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    result = verify_log()
    assert result.ok, result.problems
    assert result.size == Head.objects.get().size == len(seqs)


@pytest.mark.django_db
def test_a_rolled_back_batch_leaves_no_gap():
    first = _size()
    with transaction.atomic():
        record_events(actor=ACTOR, entries=_entries(2))
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        record_events(actor=ACTOR, entries=_entries(50))
        1 / 0  # noqa: B018 - the change fails after its events were appended
    with transaction.atomic():
        record_events(actor=ACTOR, entries=_entries(3))
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, first + 5 + 1))
    assert verify_log().ok


@pytest.mark.django_db
def test_empty_batch_writes_nothing():
    first = _size()
    with transaction.atomic():
        assert record_events(actor=ACTOR, entries=[]) == []
    assert _size() == Event.objects.count() == first


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_and_unknown_keys_are_refused():
    first = _size()
    with pytest.raises(RuntimeError, match="inside the transaction"):
        record_events(actor=ACTOR, entries=_entries(1))
    with pytest.raises(TypeError, match="actor"), transaction.atomic():
        record_events(actor=ACTOR, entries=[{"action": "x", "actor": "mallory"}])  # type: ignore[typeddict-unknown-key]
    assert Event.objects.count() == first


@pytest.mark.django_db
def test_a_batch_audits_every_row_a_bulk_change_wrote():
    """Inside an audited change, each row written needs its event; a batch provides them all."""
    first = _size()
    with audited_change():
        for pk in range(20):
            note_written("x", pk)
        record_events(
            actor=ACTOR, entries=[{"action": "x.updated", "object_type": "x", "object_id": pk} for pk in range(20)]
        )
    assert Event.objects.count() == first + 20


WRITER = """
import django, sys
django.setup()
from django.db import transaction
from audit.services import SystemActor, record_event, record_events
worker = sys.argv[1]
actor = SystemActor(f"writer-{worker}")
for i in range(int(sys.argv[2])):
    with transaction.atomic():
        if i % 2:
            record_event(actor=actor, action="test.concurrent", object_type="x", object_id=f"{worker}-{i}")
        else:
            record_events(actor=actor, entries=[
                {"action": "test.concurrent", "object_type": "x", "object_id": f"{worker}-{i}-{j}"} for j in range(5)
            ])
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_and_single_events_keep_the_log_dense_and_valid():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    processes, per_process = 4, 20
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.test_settings",
        "DATABASE_URL": f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "GOVERNANCE_VAR_DIR": str(settings.VAR_DIR),
    }
    start = Head.objects.get().size if Head.objects.exists() else 0
    root = Path(__file__).resolve().parents[2]
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(per_process)], cwd=root, env=env)
        for n in range(processes)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * processes

    written = processes * (per_process // 2) * (5 + 1)
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, start + written + 1))
    result = verify_log()
    assert result.ok, result.problems
    assert result.size == Head.objects.get().size
