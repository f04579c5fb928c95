"""Two concurrent changes that together would close a cycle: one wins, the other is refused
(PostgreSQL: the model services lock the graph they read, in primary-key order)."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from models_registry import services
from models_registry.models import ModelDependency

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_links_that_would_close_a_cycle_never_both_win(make_model, owner):
    a, b = make_model(name="m-a"), make_model(name="m-b")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def link(name: str, model, upstream) -> None:
        try:
            barrier.wait()
            services.model_update(actor=owner, model=model, changes={"upstream_models": [upstream]})
            outcomes[name] = "ok"
        except ValidationError as exc:
            outcomes[name] = "cycle" if "cycle" in str(exc) else repr(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=link, args=("b feeds a", a, b)),
        threading.Thread(target=link, args=("a feeds b", b, a)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes.values()) == ["cycle", "ok"], outcomes
    assert ModelDependency.objects.count() == 1
