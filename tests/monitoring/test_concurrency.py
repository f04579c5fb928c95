"""Concurrent ingests of one model on PostgreSQL: the deployment's row lock serialises them,
so a batch id is stored once and the series never goes back in time."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from audit.models import Event
from governance.models import MonitoringBatch, MonitoringSample
from governance.monitoring_services import monitoring_ingest
from tests.monitoring.conftest import samples

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(*calls: Callable[[], str]) -> list[str]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call: Callable[[], str]) -> None:
        try:
            barrier.wait()
            outcomes.append(call())
        except ValidationError as exc:
            outcomes.append(" ".join(exc.message_dict["samples"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_the_same_batch_sent_twice_at_once_is_stored_once(deployed, gateway):
    rows = samples(50)

    def send() -> str:
        return monitoring_ingest(actor=gateway, model=deployed.model, batch_id="b-1", samples=rows).status

    assert sorted(_race(send, send)) == ["created", "replayed"]
    assert MonitoringBatch.objects.count() == 1
    assert MonitoringSample.objects.count() == 50
    assert Event.objects.filter(action="monitoring.batch_ingested").count() == 1


def test_overlapping_batches_at_once_never_store_the_series_out_of_order(deployed, gateway):
    def send(batch_id: str, start: int) -> Callable[[], str]:
        return lambda: (
            monitoring_ingest(
                actor=gateway, model=deployed.model, batch_id=batch_id, samples=samples(10, start=start)
            ).status
        )

    outcomes = _race(send("early", 0), send("late", 5))
    assert sorted(o.split(":")[0] for o in outcomes) == ["created", "sample 0"]
    assert any("before the last stored sample" in o for o in outcomes)
    assert MonitoringBatch.objects.count() == 1
    assert MonitoringSample.objects.count() == 10
