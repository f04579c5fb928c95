"""Risk assessments on a real broker and real worker processes (CI: Redis + PostgreSQL).

- A worker killed with SIGKILL in the middle of an assessment: the job is delivered again to a
  new worker and completes exactly once (one row, one ``risk_assessment.succeeded``, the
  findings once, attempts 2). The Redis transport redelivers a message taken but never
  acknowledged once ``CELERY_BROKER_VISIBILITY_TIMEOUT`` has passed since it was taken (the
  workers here run with 5 s; production keeps it above the hard time limit).
- The broker unreachable when an assessment is requested: ``ServiceUnavailable`` (503) with a
  clear message, the assessment ended failed (``broker_unavailable``), nothing left queued; once
  the broker is back, asking again runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from audit.models import Event
from governance.errors import ServiceUnavailable
from governance.models import Finding
from models_registry import services
from models_registry.models import RiskAssessment
from tests.assessments.conftest import FAST
from tests.conftest import celery_conf
from tests.integration.assessment_worker_app import PAUSE_STEP

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

VISIBILITY_TIMEOUT = 5
ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = "" if log is None else "\n" + log.read_text(errors="replace")[-4000:]
    raise AssertionError(f"{what}: not reached within {timeout} s{tail}")


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(queue: str, name: str, **env: str) -> tuple[subprocess.Popen, Path]:
    """A ``celery worker`` (solo pool: the job runs in the process the test kills) on ``queue``."""
    log = Path(settings.VAR_DIR) / f"worker-{queue}-{name}.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.test_settings",
        "DATABASE_URL": _database_url(),
        "GOVERNANCE_VAR_DIR": str(settings.VAR_DIR),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "TEST_BROKER_KEYS": queue,
        "GOVERNANCE_AUDIT_SIGNING_KEY_FILE": str(Path(settings.VAR_DIR) / "audit" / f"key-{queue}.pem"),
        "GOVERNANCE_AUDIT_CHECKPOINT_FILE": str(Path(settings.VAR_DIR) / "audit" / f"checkpoints-{queue}.jsonl"),
        **env,
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.integration.assessment_worker_app",
                "worker",
                "-Q",
                queue,
                "-n",
                f"{name}-{queue}@%h",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_for(lambda: b"ready." in log.read_bytes() or worker.poll() is not None, 60, "worker ready", log)
    assert worker.poll() is None, log.read_text(errors="replace")
    return worker, log


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.fixture
def private_queue() -> Iterator[str]:
    """Jobs sent by this test go to a queue of its own (not eagerly), restored afterwards."""

    queue = f"test-kill-{uuid.uuid4().hex[:10]}"
    with celery_conf(task_always_eager=False, task_default_queue=queue):
        yield queue


def _actions(assessment: RiskAssessment) -> list[str]:
    return list(
        Event.objects.filter(object_type="models_registry.riskassessment", object_id=str(assessment.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_a_worker_killed_mid_assessment_is_redelivered_and_completes_exactly_once(private_queue, assessable, owner):
    import redis

    version = assessable()
    workers = []
    try:
        first, first_log = _start_worker(private_queue, "first", TEST_ASSESSMENT_PAUSE_SECONDS="120")
        workers.append(first)
        assessment, created = services.assessment_request(actor=owner, version=version, parameters=FAST)
        assert created and assessment.status == "queued"

        def paused() -> bool:
            assessment.refresh_from_db()
            return assessment.status == "running" and assessment.current_step == PAUSE_STEP

        _wait_for(paused, 90, f"the first worker at step {PAUSE_STEP!r}", first_log)
        assert assessment.attempts == 1

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        assessment.refresh_from_db()
        assert assessment.status == "running" and assessment.attempts == 1  # abandoned mid-run

        # The message, taken and never acknowledged, becomes visible again VISIBILITY_TIMEOUT
        # seconds after it was taken; a new worker restores it when it starts.
        time.sleep(max(0.0, assessment.started_at.timestamp() + VISIBILITY_TIMEOUT + 1 - time.time()))
        second, second_log = _start_worker(private_queue, "second")
        workers.append(second)

        def finished() -> bool:
            assessment.refresh_from_db()
            return assessment.is_final

        _wait_for(finished, 120, "the redelivered assessment to finish", second_log)
        assert assessment.status == "succeeded", assessment.error
        assert assessment.attempts == 2
        assert assessment.metrics and assessment.results

        # Nothing runs it a third time: the message was acknowledged and nothing is pending.
        time.sleep(VISIBILITY_TIMEOUT + 2)
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        assert client.llen(private_queue) == 0
        assert client.hlen(f"unacked-{private_queue}") == 0
    finally:
        for worker in workers:
            _stop(worker)

    assert RiskAssessment.objects.filter(version=version).count() == 1
    actions = _actions(assessment)
    assert actions.count("risk_assessment.requested") == 1
    assert actions.count("risk_assessment.started") == 2
    assert actions.count("risk_assessment.succeeded") == 1
    assert "risk_assessment.failed" not in actions
    restarted = Event.objects.filter(action="risk_assessment.started", object_id=str(assessment.pk)).order_by("seq")
    assert [e.after["restarted"] for e in restarted] == [False, True]
    succeeded = Event.objects.get(action="risk_assessment.succeeded", object_id=str(assessment.pk))
    # The findings of the one successful run, raised once.
    assert Finding.objects.filter(assessment=assessment).count() == len(succeeded.after["findings"])


@pytest.fixture
def unreachable_broker(monkeypatch) -> Iterator[Callable[[], None]]:
    """This process sends its jobs to a closed port (``CELERY_BROKER_WRITE_URL``, which Celery
    reads before its settings); calling the fixture's value brings the broker back. The app's
    pools are forgotten both ways, since a pool keeps the URL it was made with."""
    import socket

    from governance.celery import app

    def reset_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    def restore() -> None:
        monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
        reset_pools()

    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        reset_pools()
        monkeypatch.setenv("CELERY_BROKER_WRITE_URL", f"redis://127.0.0.1:{probe.getsockname()[1]}/0")
        try:
            yield restore
        finally:
            restore()


def test_an_unreachable_broker_answers_503_and_leaves_nothing_queued(
    celery_worker_process, unreachable_broker, assessable, owner
):
    version = assessable()
    with pytest.raises(ServiceUnavailable) as caught:
        services.assessment_request(actor=owner, version=version, parameters=FAST)
    assert caught.value.status == 503
    message = str(caught.value)
    assert "the job queue is unavailable" in message and "was not started (marked failed)" in message

    # Exactly one assessment, ended failed with the cause; nothing queued that no worker would run.
    assessment = RiskAssessment.objects.get(version=version)
    assert assessment.status == "failed"
    assert assessment.error["code"] == "broker_unavailable"
    assert "could not be reached" in assessment.error["message"]
    assert assessment.metrics is None and assessment.started_at is None and assessment.attempts == 0
    assert not RiskAssessment.objects.filter(status__in=["queued", "running"]).exists()
    assert _actions(assessment) == ["risk_assessment.requested", "risk_assessment.failed"]

    # The broker is back: asking again is a fresh assessment, run by the real worker.
    unreachable_broker()
    again, created = services.assessment_request(actor=owner, version=version, parameters=FAST)
    assert created and again.pk != assessment.pk

    def finished() -> bool:
        again.refresh_from_db()
        return again.is_final

    _wait_for(finished, 120, "the new assessment to finish in the worker")
    assert again.status == "succeeded", again.error
