"""The event table's indexes: the ones the log's readers use, and on PostgreSQL none of the
``varchar_pattern_ops`` copies that ``db_index=True`` would add (migration 0009)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.audit.test_snapshots_as_json_text import _migrate

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


def _single_column_indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "audit_event")
    return {
        name: info["columns"][0]
        for name, info in constraints.items()
        if info["index"] and not info["primary_key"] and len(info["columns"]) == 1
    }


def _pattern_ops_indexes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_event' AND indexdef LIKE %s ORDER BY 1",
            ["%pattern_ops%"],
        )
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db
def test_the_action_and_object_id_indexes_are_there_under_their_names():
    indexes = _single_column_indexes()
    assert indexes["audit_event_action_71fc5cf8"] == "action"
    assert indexes["audit_event_object_id_5a8e2ce6"] == "object_id"
    assert sorted(indexes.values()) == ["action", "actor_id", "object_id", "timestamp"]


@pytest.mark.django_db
@postgres_only
def test_no_pattern_ops_copies_on_postgresql():
    assert _pattern_ops_indexes() == []


@pytest.mark.django_db(transaction=True)
@postgres_only
def test_migration_0009_drops_the_copies_and_puts_them_back_when_reversed():
    _migrate("0008_append_function")
    try:
        assert _pattern_ops_indexes() == ["audit_event_action_71fc5cf8_like", "audit_event_object_id_5a8e2ce6_like"]
    finally:
        _migrate(None)
    assert _pattern_ops_indexes() == []
    assert set(_single_column_indexes()) >= {"audit_event_action_71fc5cf8", "audit_event_object_id_5a8e2ce6"}
