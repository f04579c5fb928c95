"""Jobs on a real broker and a real worker process (CI: Redis + PostgreSQL)."""

from __future__ import annotations

import time

import pytest

from audit.models import Event
from models_registry.models import Dataset
from models_registry.tasks import validate_dataset

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached before the timeout")


def test_dataset_validation_runs_in_a_worker_process(celery_worker_process, make_dataset, validator):
    dataset = make_dataset()
    assert dataset.validation_status == "not_validated"

    result = validate_dataset.delay(dataset.pk, validator.pk)

    _wait_for(lambda: Dataset.objects.get(pk=dataset.pk).validation_status != "not_validated")
    dataset.refresh_from_db()
    assert dataset.validation_status == "passed"
    event = Event.objects.get(action="dataset.validated", object_id=str(dataset.pk))
    assert event.actor_id == validator.pk
    # The worker records the Celery task id as the event's request id.
    assert event.request_id == result.id


def test_failing_rules_are_recorded_by_the_worker(celery_worker_process, make_dataset, validator):
    dataset = make_dataset(
        name="gappy",
        content=b"Date,Close\n2020-01-02,1\n2020-03-02,2\n2020-03-01,3\n",
        rules={"monotonic_timestamps": True, "max_gap_days": 7},
    )
    validate_dataset.delay(dataset.pk, validator.pk)
    _wait_for(lambda: Dataset.objects.get(pk=dataset.pk).validation_status != "not_validated")
    dataset.refresh_from_db()
    assert dataset.validation_status == "failed"
    failed = {c["rule"] for c in dataset.validation_result["checks"] if not c["passed"]}
    assert failed == {"monotonic_timestamps", "max_gap_days"}


def test_the_checkpoint_job_runs_in_a_worker_and_its_checkpoint_verifies(celery_worker_process, make_model, settings):
    from pathlib import Path

    from audit import signing
    from audit.models import Checkpoint
    from audit.tasks import make_checkpoint
    from audit.verify import verify_log

    # The worker's key and checkpoint file (see celery_worker_process), read here too.
    audit_dir = Path(settings.VAR_DIR) / "audit"
    settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE = audit_dir / f"key-{celery_worker_process}.pem"
    settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE = audit_dir / f"checkpoints-{celery_worker_process}.jsonl"
    settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE.unlink(missing_ok=True)
    signing.generate_key_file()
    make_model()

    make_checkpoint.delay()

    _wait_for(lambda: Checkpoint.objects.exists())
    _wait_for(lambda: settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE.exists())
    result = verify_log()
    assert result.ok, result.problems
    assert result.checkpoints_checked == 2
    assert Event.objects.get(action="audit.checkpoint").actor_label == "system:celery-beat"
