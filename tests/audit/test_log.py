"""The audit log: chain and tree written with every event, refused edits, verification and proofs."""

from __future__ import annotations

import io
import itertools
import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import merkle, selectors
from audit.models import AppendOnlyError, Event, Head, TreeNode
from audit.services import SystemActor, record_event
from audit.verify import verify_log
from models_registry import services
from models_registry.models import Model

ACTOR = SystemActor("test")


def _events(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            record_event(actor=ACTOR, action="test.event", object_type="x", object_id=i, after={"i": i, "f": 0.1})


def _raw(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def _without_triggers(sql: str) -> None:
    """What someone with the table owner's rights could do: switch the triggers off and edit."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            _raw("SET LOCAL session_replication_role = replica")
            _raw(sql)
    else:
        names = [f"{t}_no_{op}" for t in ("audit_event", "audit_tree_node") for op in ("update", "delete")]
        from importlib import import_module

        triggers = import_module("audit.migrations.0002_append_only_triggers")
        for name in names:
            _raw(f"DROP TRIGGER IF EXISTS {name}")
        _raw(sql)
        for statement in triggers.SQLITE:
            _raw(statement)


@pytest.mark.django_db
def test_sequence_is_dense_and_chain_links(make_model):
    make_model()
    _events(5)
    events = list(Event.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.entry_hash
    assert events[0].prev_hash == "0" * 64
    assert Head.objects.get().size == len(events)


@pytest.mark.django_db
def test_verify_ok_and_root_matches_an_independent_tree(make_version):
    make_version()
    _events(20)
    result = verify_log()
    assert result.ok, result.problems
    leaves = [bytes.fromhex(h) for h in Event.objects.order_by("seq").values_list("leaf_hash", flat=True)]
    assert result.root == merkle.MemoryTree(leaves).root().hex()
    assert result.size == len(leaves)
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert out.getvalue().strip() == f"OK: {result.size} events, root {result.root}"


@pytest.mark.django_db
def test_orm_update_and_delete_are_refused():
    _events(2)
    with pytest.raises(AppendOnlyError):
        Event.objects.filter(seq=1).update(reason="x")
    with pytest.raises(AppendOnlyError):
        Event.objects.filter(seq=1).delete()
    with pytest.raises(AppendOnlyError):
        Event.objects.get(seq=1).save()
    with pytest.raises(AppendOnlyError):
        TreeNode.objects.all().delete()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_event SET reason = 'rewritten' WHERE seq = 1",
        "DELETE FROM audit_event WHERE seq = 2",
        "UPDATE audit_tree_node SET hash = 'x'",
        "DELETE FROM audit_tree_node",
        "DELETE FROM audit_head",
    ],
)
def test_raw_sql_changes_are_refused_by_the_database(sql):
    _events(4)
    with pytest.raises(DatabaseError), transaction.atomic():
        _raw(sql)
    assert verify_log().ok


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize("table", ["audit_event", "audit_tree_node", "audit_head"])
def test_truncate_is_refused_on_postgresql(table):
    _events(2)
    with pytest.raises(DatabaseError), transaction.atomic():
        _raw(f"TRUNCATE {table} CASCADE")
    assert verify_log().ok


COLUMNS = {
    "reason": "'forged'",
    "actor_label": "'mallory'",
    "action": "'model.deleted'",
    "object_id": "'999'",
    "after": "NULL",
    "timestamp": "'2001-01-01 00:00:00+00'",
    "leaf_hash": "'" + "ab" * 32 + "'",
    "entry_hash": "'" + "cd" * 32 + "'",
    "prev_hash": "'" + "ef" * 32 + "'",
    "canonical": "'{}'",
    "object_repr": "'something else'",
    "client_address": "'10.0.0.1'",
    "policy_set_hash": "'" + "12" * 32 + "'",
}


@pytest.mark.django_db
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(sorted(COLUMNS)), seq=st.integers(1, 9))
def test_altering_any_column_is_detected_at_its_seq(column, seq):
    with transaction.atomic():
        sid = transaction.savepoint()
        _events(9)
        first = Event.objects.order_by("seq").values_list("seq", flat=True).first()
        target = first + seq - 1
        value = COLUMNS[column]
        if column == "timestamp" and connection.vendor == "sqlite":
            value = "'2001-01-01 00:00:00'"
        _without_triggers(f"UPDATE audit_event SET {column} = {value} WHERE seq = {target}")
        result = verify_log()
        transaction.savepoint_rollback(sid)
    assert not result.ok
    assert result.first_bad_seq == target


@pytest.mark.django_db
def test_deleted_and_inserted_rows_are_detected():
    _events(6)
    _without_triggers("DELETE FROM audit_event WHERE seq = 4")
    result = verify_log()
    assert result.first_bad_seq == 4
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify", stdout=out)
    assert exit_info.value.code == 1
    assert "first bad seq: 4" in out.getvalue()


@pytest.mark.django_db
def test_a_failing_service_leaves_neither_change_nor_event(owner, desk, monkeypatch):
    before = (Event.objects.count(), Head.objects.get().size)

    real_record_event = services.record_event

    def record_then_fail(**kwargs):
        real_record_event(**kwargs)
        raise RuntimeError("failure after the event was written")

    monkeypatch.setattr(services, "record_event", record_then_fail)
    with pytest.raises(RuntimeError):
        services.model_create(
            actor=owner, name="n", purpose="alpha", desk=desk, owner=owner, model_type="svm", materiality=1
        )
    assert not Model.objects.filter(name="n").exists()
    assert (Event.objects.count(), Head.objects.get().size) == before
    assert verify_log().ok


@pytest.mark.django_db
def test_proof_commands_print_proofs_that_verify():
    _events(13)
    size = Head.objects.get().size
    out = io.StringIO()
    call_command("audit_proof", "inclusion", "--seq", "5", "--tree-size", str(size - 1), stdout=out)
    inclusion = json.loads(out.getvalue())
    assert set(inclusion) == {"seq", "leaf_index", "tree_size", "leaf_hash", "root_hash", "proof"}
    assert inclusion["leaf_index"] == 4
    merkle.verify_inclusion(
        4,
        size - 1,
        bytes.fromhex(inclusion["leaf_hash"]),
        [bytes.fromhex(h) for h in inclusion["proof"]],
        bytes.fromhex(inclusion["root_hash"]),
    )
    out = io.StringIO()
    call_command("audit_proof", "consistency", "--from", "3", "--to", str(size), stdout=out)
    consistency = json.loads(out.getvalue())
    assert set(consistency) == {"first", "second", "first_root", "second_root", "proof"}
    merkle.verify_consistency(
        3,
        size,
        bytes.fromhex(consistency["first_root"]),
        bytes.fromhex(consistency["second_root"]),
        [bytes.fromhex(h) for h in consistency["proof"]],
    )
    assert consistency["second_root"] == verify_log().root
    assert selectors.inclusion_proof(seq=size)["root_hash"] == verify_log().root


@pytest.mark.django_db
def test_proof_command_refuses_out_of_range():
    _events(2)
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="outside the log"):
        call_command("audit_proof", "inclusion", "--seq", "1", "--tree-size", "999")
