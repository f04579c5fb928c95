"""PostgreSQL appends events in one server-side call (``audit_append``, migration 0008,
docs/decisions/0017). It must write byte for byte what the Python append writes: the same
rows, canonical texts, hashes, tree nodes and head."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import context, services
from audit.models import Event, Head
from audit.services import EventEntry, SystemActor, record_event, record_events
from audit.verify import verify_log
from tests.audit.test_snapshots_as_json_text import _migrate

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the database append is PostgreSQL's"),
]

ACTOR = SystemActor("test")
# Later than any event already in the log, so the database keeps it rather than raising it.
LATER = timezone.now().replace(microsecond=0) + dt.timedelta(days=3, microseconds=1)


def _rows() -> list[tuple]:
    """Every column of every event as the database holds it, snapshots as their text."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT seq, "timestamp", actor_id, actor_label, action, object_type, object_id, object_repr, '
            "before::text, after::text, reason, request_id, host(client_address), policy_set_hash, "
            "leaf_hash, prev_hash, entry_hash, canonical FROM audit_event ORDER BY seq"
        )
        return cursor.fetchall()


def _state() -> tuple[list[tuple], list[tuple], tuple]:
    with connection.cursor() as cursor:
        cursor.execute('SELECT level, "index", hash FROM audit_tree_node ORDER BY level, "index"')
        nodes = cursor.fetchall()
    head = Head.objects.values_list("size", "last_entry_hash", "frontier").get()
    return _rows(), nodes, head


def _in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "_appends_in_database", lambda connection: False)


def _write_both_ways(monkeypatch: pytest.MonkeyPatch, write) -> tuple[tuple, tuple, list, list]:
    """``write()`` from the same starting state, in the database and then in Python."""
    monkeypatch.setattr(services.timezone, "now", lambda: LATER)
    with transaction.atomic():
        savepoint = transaction.savepoint()
        assert services._appends_in_database(connection)
        in_database_returned = write()
        in_database = _state()
        transaction.savepoint_rollback(savepoint)
        with monkeypatch.context() as patch:
            _in_python(patch)
            in_python_returned = write()
            in_python = _state()
        transaction.savepoint_rollback(savepoint)
    return in_database, in_python, in_database_returned, in_python_returned


AWKWARD = [
    {"before": None, "after": {"name": "nvda-direction", "tier": 1, "limit": "250000.00"}, "reason": ""},
    {"before": {"s": 'q"\\\n\t\x01\x7f\u2028'}, "after": {"s": "é ü 中文 \U0001f600"}, "reason": 'r"\\\n\x01'},
    {"before": {"f": [0.1, 1e-7, 1e21, -0.0, 5e-324], "big": 2**60}, "after": None, "reason": "deleted"},
    {"before": {"\U0001f600": 1, "\ue000": 2, "a": {"z": [], "y": {}}}, "after": {"": ""}, "reason": "ключ"},
]


def _awkward_entries(n: int) -> list[EventEntry]:
    return [
        {
            "action": f"test.kind{i % 3}",
            "object_type": "models_registry.model",
            "object_id": f"id-{i}-\u00e9",
            "policy_set_hash": "ab" * 32 if i % 4 == 0 else "",
            **AWKWARD[i % len(AWKWARD)],
        }
        for i in range(n)
    ]


def test_single_events_are_written_as_python_writes_them(monkeypatch, django_user_model):
    user = django_user_model.objects.create_user(username="owner-ü", password="x")

    def write():
        events = []
        for i, entry in enumerate(_awkward_entries(9)):
            with context.audit_context(request_id=f"req-{i}", client_address="2001:db8::1" if i % 2 else "10.0.0.7"):
                events.append(record_event(actor=user if i % 2 else ACTOR, **entry))
        return events

    in_database, in_python, returned_db, returned_py = _write_both_ways(monkeypatch, write)
    assert in_database == in_python
    assert [e.canonical for e in returned_db] == [e.canonical for e in returned_py]
    assert in_database[0][-1][-1] == returned_db[-1].canonical
    # Not all the same text: the events differ where their inputs do.
    assert len({row[17] for row in in_database[0][-9:]}) == 9


def test_a_batch_across_calls_is_written_as_python_writes_it(monkeypatch):
    # More than one call's 500 events, from a size that is not a power of two.
    with transaction.atomic():
        if Head.objects.get().size % 2 == 0:
            record_event(actor=ACTOR, action="test.seed", object_type="x")
    in_database, in_python, returned_db, _ = _write_both_ways(
        monkeypatch, lambda: record_events(actor=ACTOR, entries=_awkward_entries(1234))
    )
    assert in_database == in_python
    rows, nodes, (size, last, frontier) = in_database
    assert size == rows[-1][0] and last == rows[-1][16]
    assert len({row[1] for row in rows[-1234:]}) == 1  # one change, one timestamp
    # Every complete subtree above the leaves is stored, and the frontier holds the rest.
    assert len(nodes) == size - bin(size).count("1")
    assert len(frontier) == bin(size).count("1")
    assert [(e.seq, e.leaf_hash, e.prev_hash, e.entry_hash) for e in returned_db] == [
        (row[0], row[14], row[15], row[16]) for row in rows[-1234:]
    ]


def test_returned_events_equal_the_stored_ones():
    with transaction.atomic(), context.audit_context(request_id="r-1", client_address="::ffff:10.0.0.1"):
        returned = record_events(actor=ACTOR, entries=_awkward_entries(6))
    for event in returned:
        stored = Event.objects.get(seq=event.seq)
        assert not event._state.adding
        for field in Event._meta.concrete_fields:
            assert getattr(event, field.attname) == getattr(stored, field.attname), field.name
    assert verify_log().ok


def test_timestamps_never_go_backwards_along_the_seqs(monkeypatch):
    with transaction.atomic():
        first = record_event(actor=ACTOR, action="test.first", object_type="x")
    # The application's clock steps back (or a slower writer's clock was read earlier).
    monkeypatch.setattr(services.timezone, "now", lambda: first.timestamp - dt.timedelta(seconds=5))
    with transaction.atomic():
        second = record_event(actor=ACTOR, action="test.second", object_type="x")
    assert second.timestamp == first.timestamp
    assert Event.objects.get(seq=second.seq).timestamp == first.timestamp
    result = verify_log()
    assert result.ok, result.problems


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40),
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
        max_leaves=8,
    ),
    count=st.integers(1, 5),
)
def test_any_content_is_written_as_python_writes_it(text, value, count, monkeypatch):
    entries: list[EventEntry] = [
        {"action": "test.random", "object_type": "x", "object_id": text[:64], "reason": text, "after": {text: value}}
    ] * count
    in_database, in_python, _, _ = _write_both_ways(monkeypatch, lambda: record_events(actor=ACTOR, entries=entries))
    assert in_database == in_python


def test_a_missing_head_is_started_only_for_an_empty_log(monkeypatch):
    with transaction.atomic():
        record_event(actor=ACTOR, action="test.event", object_type="x")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_head DISABLE TRIGGER audit_head_no_delete")
        try:
            with transaction.atomic():
                cursor.execute("DELETE FROM audit_head")
                with pytest.raises(RuntimeError, match="head row is missing while events exist"):
                    record_event(actor=ACTOR, action="test.event", object_type="x")
                transaction.set_rollback(True)
        finally:
            cursor.execute("ALTER TABLE audit_head ENABLE TRIGGER audit_head_no_delete")
    assert Head.objects.exists()


def _function_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef(to_regprocedure('audit_append(jsonb, inet, timestamptz)'))")
        return cursor.fetchone()[0]


def test_the_previous_version_of_the_function_writes_the_same(monkeypatch):
    # Migration 0010 rewrote audit_append with fewer statements: from the same state, 0008's
    # version and this one write the same rows, tree nodes and head.
    previous = importlib.import_module("audit.migrations.0008_append_function").FUNCTION
    monkeypatch.setattr(services.timezone, "now", lambda: LATER)
    with transaction.atomic():
        record_event(actor=ACTOR, action="test.seed", object_type="x")
        savepoint = transaction.savepoint()
        assert "frontier = v_frontier" in _function_text()
        returned_now = record_events(actor=ACTOR, entries=_awkward_entries(777))
        state_now = _state()
        transaction.savepoint_rollback(savepoint)
        with connection.cursor() as cursor:
            cursor.execute(previous)
        assert "frontier = v_frontier" not in _function_text()
        returned_before = record_events(actor=ACTOR, entries=_awkward_entries(777))
        state_before = _state()
        transaction.set_rollback(True)
    assert state_now == state_before
    assert [e.entry_hash for e in returned_now] == [e.entry_hash for e in returned_before]


@pytest.mark.django_db(transaction=True)
def test_migration_0010_is_reversed_to_the_previous_function():
    _migrate("0009_event_no_pattern_indexes")
    try:
        assert "frontier = v_frontier" not in _function_text()
        with transaction.atomic():
            record_events(actor=ACTOR, entries=_awkward_entries(5))
    finally:
        _migrate(None)
    assert "frontier = v_frontier" in _function_text()
    with transaction.atomic():
        record_events(actor=ACTOR, entries=_awkward_entries(5))
    assert verify_log().ok
