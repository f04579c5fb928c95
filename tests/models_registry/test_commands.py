from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import Event

pytestmark = pytest.mark.django_db


def test_validate_datasets_reports_each_and_fails_on_broken_rules(make_dataset):
    make_dataset(name="good")
    make_dataset(
        name="bad",
        content=b"Date,Close\n2020-01-03,1\n2020-01-02,2\n",
        rules={"monotonic_timestamps": True},
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 dataset"):
        call_command("validate_datasets", stdout=out)
    text = out.getvalue()
    assert "good: passed" in text
    assert "bad: failed (1 timestamps not strictly after the previous one)" in text
    assert Event.objects.filter(action="dataset.validated", actor_label="system:validate_datasets").count() == 2


def test_validate_datasets_by_name_and_unknown_name(make_dataset):
    make_dataset(name="good")
    out = io.StringIO()
    call_command("validate_datasets", "good", stdout=out)
    assert out.getvalue().strip() == "good: passed"
    with pytest.raises(CommandError, match="unknown dataset"):
        call_command("validate_datasets", "nope")


def test_validate_datasets_queue_runs_eagerly_without_a_broker(make_dataset):
    dataset = make_dataset(name="good")
    out = io.StringIO()
    call_command("validate_datasets", "--queue", stdout=out)
    assert "good: queued as" in out.getvalue()
    dataset.refresh_from_db()
    assert dataset.validation_status == "passed"
