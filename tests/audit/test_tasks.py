"""The periodic checkpoint job: signs the log when it grew, stays quiet when idle."""

from __future__ import annotations

import pytest
from django.conf import settings

from audit import signing
from audit.models import Checkpoint, Event, Head
from audit.tasks import make_checkpoint
from audit.verify import verify_log
from tests.audit.test_log import _events

pytestmark = pytest.mark.django_db


def test_the_beat_schedule_runs_the_checkpoint_task_at_the_configured_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] == make_checkpoint.name == "audit.make_checkpoint"
    assert entry["schedule"] == float(settings.GOVERNANCE_AUDIT_CHECKPOINT_INTERVAL)


def test_checkpoint_task_signs_a_grown_log_and_skips_an_idle_one(django_capture_on_commit_callbacks):
    signing.generate_key_file()
    _events(3)
    with django_capture_on_commit_callbacks(execute=True):  # the file line is written on commit
        size = make_checkpoint.delay().get()
    checkpoint = Checkpoint.objects.get()
    assert size == checkpoint.tree_size == Head.objects.get().size  # its own event is inside
    event = Event.objects.get(action="audit.checkpoint")
    assert event.actor_label == "system:celery-beat" and event.request_id

    assert make_checkpoint.delay().get() is None
    assert Checkpoint.objects.count() == 1

    _events(1)
    with django_capture_on_commit_callbacks(execute=True):
        assert make_checkpoint.delay().get() == size + 2
    result = verify_log()
    assert result.ok and result.checkpoints_checked == 4  # two in the database, two in the file


def test_checkpoint_task_without_a_key_fails_loudly_and_writes_nothing():
    _events(2)
    events = Event.objects.count()
    with pytest.raises(Exception, match="no audit signing key"):
        make_checkpoint.delay().get()
    assert Event.objects.count() == events
    assert not Checkpoint.objects.exists()
