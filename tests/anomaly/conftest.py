"""Fixtures of the anomaly tests: a deployed version with a rollback target, and live samples."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from governance import monitoring_services, services
from tests.factories import force_fields
from tests.signoff.conftest import EVIDENCE, deployment


def deploy(owner, version, approver, **proposal):
    request = services.signoff_submit(
        actor=owner,
        version=version,
        to_status="deployed",
        justification="Phase plan agreed with the desk.",
        evidence=EVIDENCE,
        deployment=deployment(**proposal),
    )
    return services.signoff_respond(actor=approver, request=request, verdict="approve", comment="Limits agreed.")


@pytest.fixture
def newer(approved_version, make_version):
    """Version 1.1.0 of the approved model, approved too: the one deployed, 1.0.0 its rollback target."""
    version = make_version(model=approved_version.model, version="1.1.0")
    return force_fields(version, status="approved")


@pytest.fixture
def deployed_with_target(approved_version, newer, owner, second_risk_manager, django_capture_on_commit_callbacks):
    """``newer`` deployed (shadow) with ``approved_version`` as its rollback target; the baseline
    accuracy 0.6 set for the model (no risk assessment ran in these tests)."""

    def make(**overrides: Any):
        proposal = {
            "rollback_target": {"version_id": approved_version.pk, "label": approved_version.version},
            "monitoring_parameters": {"accuracy": {"baseline": 0.6}},
            **overrides,
        }
        with django_capture_on_commit_callbacks(execute=True):
            deploy(owner, newer, second_risk_manager, phase="shadow", **proposal)
        newer.refresh_from_db()
        return newer

    return make


def samples(
    *,
    n: int,
    accuracy: float | Callable[[int], float] = 0.6,
    seed: int = 1,
    start: dt.datetime | None = None,
    per_day: int = 40,
    pnl: Callable[[int, bool], str] | None = None,
) -> list[dict[str, Any]]:
    """``n`` samples, ``per_day`` a day ending before now, right with probability ``accuracy``
    (a number or a function of the index); P&L +100 when right, -100 when wrong by default."""
    rng = np.random.default_rng(seed)
    days = n // per_day + 1
    first = start or (timezone.now() - dt.timedelta(days=days + 1)).replace(hour=8, minute=0, second=0, microsecond=0)
    out = []
    for i in range(n):
        at = first + dt.timedelta(days=i // per_day, minutes=5 * (i % per_day))
        p = accuracy(i) if callable(accuracy) else accuracy
        right = bool(rng.random() < p)
        predicted = int(rng.integers(0, 2))
        out.append(
            {
                "at": at.isoformat(),
                "instrument": "NVDA",
                "predicted": predicted,
                "outcome": predicted if right else 1 - predicted,
                "trade_count": 1,
                "pnl": pnl(i, right) if pnl else ("100.00" if right else "-100.00"),
                "pnl_kind": "trade",
            }
        )
    return out


def ingest(actor, model, rows: list[dict[str, Any]], *, batch: str = "b", size: int = 500) -> None:
    for index in range(0, len(rows), size):
        monitoring_services.monitoring_ingest(
            actor=actor, model=model, batch_id=f"{batch}-{index // size}", samples=rows[index : index + size]
        )
