"""verify_log's shortcuts (raw rows, canonical text from stored JSON) equal the ORM path exactly,
and tampering with tree nodes or column types is still found."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audit import canonical, hashing, verify
from audit.models import Event, TreeNode
from audit.services import SystemActor, record_event
from audit.snapshot import json_safe
from tests.audit.test_log import _events, _without_triggers

ACTOR = SystemActor("test")

# No NUL: PostgreSQL's jsonb cannot hold it (record_event fails there; see the NUL cases in
# tests/audit/test_canonical.py for the canonical form itself).
_text = st.text(
    st.one_of(
        st.characters(codec="utf-8", exclude_characters="\x00"), st.sampled_from('\x1f"\\\x7f\u2028\uffff\U0001f600')
    ),
    max_size=12,
)
_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**60), 2**60),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1.0, -0.0, 1e-7, 1e-5, 0.1, 1e15, 2.5e-300]),
        _text,
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)),
    max_leaves=12,
)


def _orm_bytes() -> dict[int, bytes]:
    return {
        row["seq"]: hashing.canonical_bytes(row) for row in Event.objects.values(*verify.EVENT_COLUMNS[:14]).iterator()
    }


def _fast_bytes() -> dict[int, bytes]:
    utc = verify.naive_timestamps_are_utc()
    return {row[0]: verify.row_canonical_bytes(row, utc) for row in verify.event_rows()}


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(before=None, after={"": None, "before": None}, reason="", object_id="", whole_second=False)
@given(
    before=st.one_of(st.none(), st.dictionaries(_text, _values, max_size=5)),
    after=st.one_of(st.none(), st.dictionaries(_text, _values, max_size=5)),
    reason=_text,
    object_id=_text,
    whole_second=st.booleans(),
)
def test_fast_canonical_bytes_equal_the_orm_path(before, after, reason, object_id, whole_second, monkeypatch):
    if whole_second:
        # SQLite then stores the timestamp without a fraction.
        monkeypatch.setattr("django.utils.timezone.now", lambda: dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC))
    with transaction.atomic():
        sid = transaction.savepoint()
        record_event(
            actor=ACTOR,
            action="test.random",
            object_type="x",
            object_id=object_id[:64],
            before=json_safe(before) if before is not None else None,
            after=json_safe(after) if after is not None else None,
            reason=reason,
        )
        fast, orm = _fast_bytes(), _orm_bytes()
        leaves = dict(Event.objects.values_list("seq", "leaf_hash"))
        stored = dict(Event.objects.values_list("seq", "canonical"))
        # The database's check of the columns against the stored text accepts every row.
        accepted = verify.verify_log_fast(chunk_size=8192, workers=1)
        result = verify.verify_log()
        transaction.savepoint_rollback(sid)
    # A snapshot whose text holds the separator after "after" cannot be spliced unambiguously:
    # the fast way declines the log then, and the thorough way decides (audit/verify.py).
    snapshots = [json_safe(value) for value in (before, after) if value is not None]
    splice_ambiguous = any(',"before":' in canonical.dumps(value).decode() for value in snapshots)
    assert (accepted is None) == splice_ambiguous
    assert {seq: text.encode("utf-8") for seq, text in stored.items()} == orm
    assert fast == orm
    assert all(hashing.merkle.leaf_hash(data).hex() == leaves[seq] for seq, data in fast.items())
    assert result.ok, result.problems


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'sqlite'")
@pytest.mark.parametrize("template", ["{date}T{time}", "{date} {time}+00:00", "{date}T{time}Z"])
def test_another_spelling_of_the_same_timestamp_still_verifies_on_sqlite(template):
    """The fast path reads Django's own spelling; any other the ORM accepts goes the ORM's way."""
    _events(3)
    stored = Event.objects.filter(seq=2).values_list("timestamp", flat=True).get()
    naive = stored.astimezone(dt.UTC).replace(tzinfo=None)
    date, time = str(naive).split(" ")
    _without_triggers(f"UPDATE audit_event SET timestamp = '{template.format(date=date, time=time)}' WHERE seq = 2")
    assert _fast_bytes() == _orm_bytes()
    assert verify.verify_log().ok


@pytest.mark.django_db
def test_a_tampered_tree_node_is_found_at_its_first_leaf():
    _events(12)
    node = TreeNode.objects.get(level=2, index=1)
    _without_triggers(f"UPDATE audit_tree_node SET hash = '{'ab' * 32}' WHERE id = {node.pk}")
    result = verify.verify_log()
    assert result.first_bad_seq == (1 << 2) + 1
    assert "stored tree node 2/1" in result.problems[0]


@pytest.mark.django_db
def test_missing_and_extra_tree_nodes_are_found():
    _events(9)
    _without_triggers('DELETE FROM audit_tree_node WHERE level = 1 AND "index" = 3')
    result = verify.verify_log()
    assert not result.ok
    assert result.first_bad_seq == 7  # the first leaf of the missing node 1/3
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO audit_tree_node (level, \"index\", hash) VALUES (1, 3, '{'00' * 32}')")
        cursor.execute(f"INSERT INTO audit_tree_node (level, \"index\", hash) VALUES (9, 0, '{'00' * 32}')")
    result = verify.verify_log()
    assert result.first_bad_seq == 1  # node 9/0 would cover leaves from 1 on
    assert any("stored tree node 1/3" in p for p in result.problems)


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_a_column_of_the_wrong_type_is_reported_not_raised():
    """SQLite lets a column hold any type: the row is reported at its seq."""
    _events(4)
    _without_triggers("UPDATE audit_event SET actor_label = 12345 WHERE seq = 3")
    result = verify.verify_log()
    assert result.first_bad_seq == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper", [None, "UPDATE audit_event SET reason = 'x' WHERE seq = 11", "DELETE FROM audit_event WHERE seq = 8"]
)
def test_worker_processes_give_the_same_result(tamper):
    _events(20)
    if tamper:
        _without_triggers(tamper)
    alone = verify.verify_log(chunk_size=3)
    parallel = verify.verify_log(chunk_size=3, workers=2)
    assert (parallel.ok, parallel.first_bad_seq, parallel.problems, parallel.root) == (
        alone.ok,
        alone.first_bad_seq,
        alone.problems,
        alone.root,
    )
    assert alone.ok is (tamper is None)


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_fragments_that_splice_into_the_same_text_are_still_found():
    """``after`` and ``before`` are spliced into the canonical text as stored; moving their
    boundary (possible only when a fragment holds ',"before":') gives the same text, so the
    fast path sends such rows the thorough way, which finds the change. (Django's CHECK
    (JSON_VALID(...)) on the columns refuses such fragments; someone able to drop triggers
    can switch it off as well.)"""
    with transaction.atomic():
        record_event(actor=ACTOR, action="a", object_type="x", object_id=1, after={"a": 1, "before": 2})
        record_event(actor=ACTOR, action="b", object_type="x", object_id=2, after={"z": 3})
    seq = Event.objects.get(action="a").seq
    assert Event.objects.filter(seq=seq).values_list("after", flat=True).get() == {"a": 1, "before": 2}
    assert verify.verify_log().ok
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA ignore_check_constraints = ON")
    try:
        _without_triggers(
            f"""UPDATE audit_event SET "after" = '{{"a":1', "before" = '2}},"before":null' WHERE seq = {seq}"""
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA ignore_check_constraints = OFF")
    guard = """AND instr(coalesce("before", ''), ',"before":') = 0 AND instr(coalesce("after", ''), ',"before":') = 0"""
    assert guard in verify._SQLITE_FAST
    with connection.cursor() as cursor:
        cursor.execute(verify._SQLITE_FAST.replace(guard, ""), [seq, seq])
        row = cursor.fetchone()
    # Without the guard the columns would pass for the stored text: only the guard keeps
    # the row off the fast path.
    assert row[5] == 1
    assert verify.verify_log_fast(chunk_size=8192, workers=1) is None
    result = verify.verify_log()
    assert result.first_bad_seq == seq


@pytest.mark.django_db
def test_the_stored_text_is_what_the_leaf_hash_covers():
    _events(3)
    for text, leaf in Event.objects.values_list("canonical", "leaf_hash"):
        assert hashing.merkle.leaf_hash(text.encode("utf-8")).hex() == leaf
    assert verify.verify_log_fast(chunk_size=2, workers=1) is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tamper", [None, "UPDATE audit_event SET reason = 'x' WHERE seq = 11"])
def test_workers_reading_ranges_on_their_own_connections(tamper):
    """Outside a transaction the fast path's workers read ranges themselves (PostgreSQL;
    SQLite in memory cannot be shared, so there it runs in this process)."""
    _events(20)
    if tamper:
        _without_triggers(tamper)
    parallel = verify.verify_log(chunk_size=3, workers=2)
    alone = verify.verify_log(chunk_size=3)
    assert (parallel.ok, parallel.first_bad_seq, parallel.problems, parallel.root) == (
        alone.ok,
        alone.first_bad_seq,
        alone.problems,
        alone.root,
    )
    assert alone.ok is (tamper is None)


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1", None])
def test_client_addresses_take_the_fast_path(address):
    from audit.context import audit_context

    with audit_context(client_address=address), transaction.atomic():
        record_event(actor=ACTOR, action="a", object_type="x", object_id=1, after={"f": 1e-05, "g": 1.0})
    assert verify.verify_log_fast(chunk_size=8192, workers=1) is not None
    assert verify.verify_log().ok
