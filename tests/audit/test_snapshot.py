"""Snapshots that every backend can store and hash alike."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import Event
from audit.services import SystemActor, record_event
from audit.snapshot import json_safe
from audit.verify import verify_log


def test_nul_characters_become_visible_text_in_keys_and_values():
    assert json_safe({"a\x00": ["x\x00y", "plain"]}) == {"a\\u0000": ["x\\u0000y", "plain"]}


@pytest.mark.django_db
def test_an_event_with_nul_characters_is_stored_and_verifies():
    # PostgreSQL's jsonb refuses U+0000 (this failed there with a DataError before).
    with transaction.atomic():
        event = record_event(actor=SystemActor("tests"), action="test.nul", after={"name": "bad\x00name"})
    assert Event.objects.get(seq=event.seq).after == {"name": "bad\\u0000name"}
    assert verify_log().ok
