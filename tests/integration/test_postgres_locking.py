"""Row locking on PostgreSQL: concurrent lifecycle decisions never both win."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from audit.models import Event
from governance.errors import InvalidTransition
from models_registry import services
from models_registry.models import ModelVersion

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_validate_and_reject_one_wins(make_version, owner, validator, compliance):
    version = make_version()
    services.validation_assign(actor=compliance, model=version.model, validator=validator)
    for status in ("in_development", "submitted_for_validation"):
        services.model_version_transition(actor=owner, version=version, to_status=status)

    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    # The assigned validator validates while the owner withdraws the submission.
    actors = {"validated": validator, "in_development": owner}

    def decide(target: str) -> None:
        try:
            barrier.wait()
            services.model_version_transition(actor=actors[target], version=version, to_status=target)
            outcomes[target] = "ok"
        except InvalidTransition:
            outcomes[target] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(t,)) for t in ("validated", "in_development")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes.values()) == ["ok", "refused"]
    winner = next(t for t, o in outcomes.items() if o == "ok")
    assert ModelVersion.objects.get(pk=version.pk).status == winner
    decisions = Event.objects.filter(
        object_id=str(version.pk), action__in=["model_version.validate", "model_version.withdraw"]
    )
    assert decisions.count() == 1
