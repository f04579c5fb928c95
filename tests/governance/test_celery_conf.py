"""Tests that switch Celery's eagerness off for a while must leave later tests eager.

A session-scoped worker fixture once saved ``task_always_eager`` as read and wrote it back
at the end of the session, so every later test of that test process ran its jobs on the
real worker (without the test's settings: reports came out unsigned, simulated days were
evaluated a day late). ``tests.conftest.celery_conf`` restores Celery's own layer instead.
"""

from __future__ import annotations

from celery import current_app
from django.test import override_settings

from tests.conftest import celery_conf


def test_celery_conf_restores_the_layer_not_the_values_read_under_an_override():
    assert current_app.conf.task_always_eager is True
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
        # The value read here comes from the override of the moment...
        assert current_app.conf.task_always_eager is False
        with celery_conf(task_always_eager=False, task_default_queue="test-private"):
            assert current_app.conf.task_default_queue == "test-private"
    # ...and is not pinned once the override is gone.
    assert current_app.conf.task_always_eager is True
    assert current_app.conf.task_default_queue != "test-private"


def test_the_worker_fixture_is_per_test_and_leaves_celery_eager(request):
    fixture = request._fixturemanager.getfixturedefs("celery_worker_process", request.node)[-1]
    assert fixture.scope == "function"  # the process itself is the session-scoped _celery_worker_started
    assert current_app.conf.task_always_eager is True
