"""``before``/``after`` keep their RFC 8785 text (PostgreSQL ``json``, decision 0015): the fast
verification compares them as text, readers and key lookups see JSON values as before, and
migration 0007 turns an existing ``jsonb`` log into text without hiding an altered event."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from audit import verify
from audit.models import Event
from audit.services import SystemActor, record_event
from tests.audit.test_log import _events, _without_triggers

ACTOR = SystemActor("test")
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


def _column_text(seq: int, column: str) -> str | None:
    cast = "::text" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{column}"{cast} FROM audit_event WHERE seq = %s', [seq])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_snapshots_are_stored_as_their_canonical_text_and_read_back_as_values():
    with transaction.atomic():
        event = record_event(
            actor=ACTOR,
            action="test.snapshot",
            object_type="x",
            object_id=1,
            before={"z": 1.0, "a": [1e-7, "é\n"], "big": 10**20},
            after={"rule": "SOD-8", "n": 2},
        )
    assert _column_text(event.seq, "before") == '{"a":[1e-7,"é\\n"],"big":"100000000000000000000","z":1}'
    assert _column_text(event.seq, "after") == '{"n":2,"rule":"SOD-8"}'
    stored = Event.objects.get(seq=event.seq)
    assert stored.before == {"z": 1, "a": [1e-7, "é\n"], "big": "100000000000000000000"}
    assert stored.after == {"rule": "SOD-8", "n": 2}
    assert stored.canonical.find(_column_text(event.seq, "after")) > 0


@pytest.mark.django_db
def test_key_and_field_lookups_work_on_the_text_columns():
    with transaction.atomic():
        record_event(actor=ACTOR, action="a", object_type="x", object_id=1, after={"rule": "SOD-8", "n": {"k": 2}})
        record_event(actor=ACTOR, action="b", object_type="x", object_id=2, after={"rule": "SOD-2"})
    events = Event.objects.filter(object_type="x")
    assert list(events.filter(after__rule="SOD-8").values_list("action", flat=True)) == ["a"]
    assert list(events.filter(after__n__k=2).values_list("action", flat=True)) == ["a"]
    assert list(events.filter(after__rule__startswith="SOD-").order_by("seq").values_list("action", flat=True)) == [
        "a",
        "b",
    ]
    if connection.features.supports_json_field_contains:
        assert list(events.filter(after__contains={"rule": "SOD-2"}).values_list("action", flat=True)) == ["b"]
    assert list(events.filter(after__has_key="n").values_list("action", flat=True)) == ["a"]
    assert list(events.filter(before__isnull=True).order_by("seq").values_list("action", flat=True)) == ["a", "b"]


@pytest.mark.django_db
@postgres_only
def test_the_column_type_on_postgresql_is_json():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'audit_event' AND column_name IN ('before', 'after') ORDER BY column_name"
        )
        assert cursor.fetchall() == [("after", "json"), ("before", "json")]


@pytest.mark.django_db
@postgres_only
def test_an_altered_snapshot_text_is_found_even_when_it_means_the_same_value():
    """The server compares text: whitespace or key order that ``jsonb`` would have hidden
    fails the fast path, and the thorough path then decides (the value is the same, so the
    log still verifies: what is hashed is the canonical text, not the column's spelling)."""
    _events(4)
    seq = Event.objects.get(action="test.event", object_id="2").seq
    assert verify.verify_log_fast(chunk_size=8192, workers=1) is not None
    _without_triggers(f"""UPDATE audit_event SET "after" = '{{"i": 2, "f": 0.1}}' WHERE seq = {seq}""")
    assert verify.verify_log_fast(chunk_size=8192, workers=1) is None
    assert verify.verify_log().ok
    _without_triggers(f"""UPDATE audit_event SET "after" = '{{"i": 7, "f": 0.1}}' WHERE seq = {seq}""")
    assert verify.verify_log().first_bad_seq == seq


@pytest.mark.django_db
@postgres_only
def test_a_snapshot_holding_the_separator_goes_the_thorough_way_and_verifies():
    guard = (
        """strpos(coalesce("before"::text, ''), ',"before":') = 0 """
        """AND strpos(coalesce("after"::text, ''), ',"before":') = 0"""
    )
    assert guard in verify._POSTGRES_FAST
    with transaction.atomic():
        record_event(actor=ACTOR, action="a", object_type="x", object_id=1, after={"a": 1, "before": 2})
    assert verify.verify_log_fast(chunk_size=8192, workers=1) is None
    assert verify.verify_log().ok


def _migrate(target: str | None) -> None:
    """Migrate the audit app to ``target``, or to its latest migration for ``None``."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("audit") if target is None else [("audit", target)])


@pytest.mark.django_db(transaction=True)
@postgres_only
def test_migration_0007_keeps_each_events_hashed_text_and_an_altered_event_still_fails():
    _migrate("0006_event_object_type_index")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'audit_event' "
                "AND column_name = 'after'"
            )
            assert cursor.fetchone()[0] == "jsonb"
        with transaction.atomic():
            # As the writer did before 0007: RFC 8785 text into jsonb (which keeps a parsed form).
            events = [
                record_event(
                    actor=ACTOR,
                    action="test.event",
                    object_type="x",
                    object_id=i,
                    before=None if i % 2 else {"status": "draft", "w": [1.5, 1e-7]},
                    after={"a": 1, "before": 2, "i": i} if i == 4 else {"i": i, "f": 0.1, "s": 'q"\\\n'},
                    reason='r"\\\n\x01é\U0001f600',
                )
                for i in range(6)
            ]
        seq = {i: event.seq for i, event in enumerate(events)}
        _without_triggers(f"""UPDATE audit_event SET "after" = '{{"i": 99, "f": 0.1}}' WHERE seq = {seq[2]}""")
        assert _column_text(seq[1], "after") == '{"f": 0.1, "i": 1, "s": "q\\"\\\\\\n"}'  # jsonb's spelling
    finally:
        _migrate(None)
    canonical = dict(Event.objects.values_list("seq", "canonical"))
    for i in (0, 1, 3, 5):
        # The fragment of the hashed text, exactly, not the value spelled anew.
        assert f'"after":{_column_text(seq[i], "after")},"before":' in canonical[seq[i]]
    assert _column_text(seq[0], "before") == '{"status":"draft","w":[1.5,1e-7]}'
    # Altered before the migration: kept as it was, and still reported.
    assert _column_text(seq[2], "after") == '{"f": 0.1, "i": 99}'
    # A fragment holding the separator cannot be cut out unambiguously: kept as jsonb spelled it.
    assert _column_text(seq[4], "after") == '{"a": 1, "i": 4, "before": 2}'
    result = verify.verify_log()
    assert result.first_bad_seq == seq[2]
    assert [p for p in result.problems if not p.startswith(f"seq {seq[2]}:")] == []
