"""Test-only Celery app for tests/integration/test_assessment_worker.py (never used in production).

It is the project's app (``governance.celery``) with two test hooks, both driven by the
environment of the worker process the test starts:

- ``TEST_BROKER_KEYS``: the Redis transport keeps the messages a worker has taken but not yet
  acknowledged under keys of this name (``unacked-<name>``...) instead of the shared ones, and
  looks for abandoned ones every second. A worker of this test restores only the messages of
  this test, never those of workers other tests run at the same time on the same Redis.
- ``TEST_ASSESSMENT_PAUSE_SECONDS``: the assessment pipeline pauses that long after reporting
  the step ``PAUSE_STEP``, so the test can kill the worker in the middle of a job. The pause is
  added here, by wrapping ``models_registry.assessment.run`` in this process only; nothing in
  the application sleeps.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import signals

from governance.celery import app

PAUSE_STEP = "performance on the test set"

_keys = os.environ.get("TEST_BROKER_KEYS")
if _keys:
    app.conf.broker_transport_options = {
        **(app.conf.broker_transport_options or {}),
        "unacked_key": f"unacked-{_keys}",
        "unacked_index_key": f"unacked_index-{_keys}",
        "unacked_mutex_key": f"unacked_mutex-{_keys}",
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }


@signals.task_prerun.connect
def _pause_assessments(**kwargs: Any) -> None:
    seconds = float(os.environ.get("TEST_ASSESSMENT_PAUSE_SECONDS") or 0)
    if not seconds:
        return
    from models_registry import assessment

    if getattr(assessment.run, "paused_for_tests", False):
        return
    original = assessment.run

    def run(inputs: Any, progress: Any) -> Any:
        def report(percent: int, step: str) -> None:
            progress(percent, step)
            if step == PAUSE_STEP:
                time.sleep(seconds)

        return original(inputs, report)

    run.paused_for_tests = True  # type: ignore[attr-defined]
    assessment.run = run


__all__ = ["app"]
