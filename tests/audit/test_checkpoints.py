"""Signed checkpoints: stored in the database and a file, checked by audit_verify; a cut tail is caught."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from audit import merkle, signing
from audit.models import Checkpoint, Event, Head
from audit.services import SystemActor, checkpoint_create
from audit.verify import verify_log
from tests.audit.test_log import _events, _without_triggers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(settings, tmp_path):
    settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE = tmp_path / "key.pem"
    settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"
    signing.generate_key_file()
    return signing.load_private_key()


def _file_lines(settings) -> list[dict]:
    return [json.loads(line) for line in Path(settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE).read_text().splitlines()]


def test_checkpoint_is_signed_stored_and_appended_to_the_file(key, settings):
    _events(5)
    out = io.StringIO()
    call_command("audit_checkpoint", stdout=out)
    printed = json.loads(out.getvalue())
    checkpoint = Checkpoint.objects.get()
    size = Head.objects.get().size
    assert printed["tree_size"] == checkpoint.tree_size == size
    assert Event.objects.filter(action="audit.checkpoint", seq=size).exists()
    assert _file_lines(settings) == [printed]
    head = signing.SignedTreeHead(
        checkpoint.tree_size, checkpoint.root_hash, checkpoint.timestamp, checkpoint.key_id, checkpoint.signature
    )
    assert signing.signature_valid(key.public_key(), head)
    result = verify_log()
    assert result.ok, result.problems
    assert result.checkpoints_checked == 2  # the database row and the file line
    assert result.root == checkpoint.root_hash


def test_cutting_the_tail_after_a_checkpoint_is_detected(key):
    _events(6)
    checkpoint = checkpoint_create(actor=SystemActor("test"))
    n = checkpoint.tree_size
    keep = n - 2
    # An owner-level attacker removes the last two events and their tree nodes, and rewinds
    # the head consistently: the chain and tree of what remains are then intact.
    remaining = [
        bytes.fromhex(h)
        for h in Event.objects.filter(seq__lte=keep).order_by("seq").values_list("leaf_hash", flat=True)
    ]
    tree = merkle.MemoryTree(remaining)
    last = Event.objects.get(seq=keep)
    _without_triggers(f"DELETE FROM audit_event WHERE seq > {keep}")
    for level in range(1, n.bit_length()):
        _without_triggers(
            f'DELETE FROM audit_tree_node WHERE level = {level} AND ("index" + 1) * {1 << level} > {keep}'
        )
    Head.objects.filter(pk=1).update(
        size=keep, last_entry_hash=last.entry_hash, frontier=[[lv, h.hex()] for lv, h in tree.frontier()]
    )
    assert Event.objects.count() == keep
    result = verify_log()
    assert not result.ok
    assert result.first_bad_seq == keep + 1
    assert any("the log was cut" in p for p in result.problems)


def test_a_forged_checkpoint_line_is_refused(key, settings):
    _events(3)
    checkpoint_create(actor=SystemActor("test"))
    lines = _file_lines(settings)
    forged = {**lines[0], "root_hash": "00" * 32}
    Path(settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE).write_text(json.dumps(forged) + "\n")
    result = verify_log()
    assert not result.ok
    assert any("invalid signature" in p for p in result.problems)


def test_checkpoints_without_a_key_cannot_be_verified(key, settings):
    _events(2)
    checkpoint_create(actor=SystemActor("test"))
    Path(settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE).unlink()
    result = verify_log()
    assert result.first_bad_seq is None
    assert not result.ok
    assert result.unverifiable


def test_checkpoint_rows_are_append_only(key):
    _events(1)
    checkpoint_create(actor=SystemActor("test"))
    from django.db import DatabaseError, connection

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_checkpoint")
    assert Checkpoint.objects.count() == 1
