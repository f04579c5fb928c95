"""Fixtures for monitoring ingest: a deployed model (the shared one, as its deployment row), a
trading-system account in its scope, and sample builders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from audit.services import SystemActor
from governance import services
from governance.models import Deployment
from governance.roles import Role
from tests.factories import UserFactory

# A fixed past day, so "in the future" never depends on when the tests run.
T0 = dt.datetime(2026, 11, 2, 14, 30, tzinfo=dt.UTC)


@pytest.fixture
def deployed(live_deployment) -> Deployment:
    """The approved version deployed in the first phase (tests/fixtures_deployment.py): here,
    the deployment row."""
    return live_deployment


@pytest.fixture
def gateway(db, desk):
    """A service account of the trading infrastructure that sees the desk's models."""
    user = UserFactory(username="gateway", roles=[Role.TRADING_SYSTEM])
    services.desk_access_grant(actor=SystemActor("tests"), user=user, desk=desk, permission="view_desk_models")
    return user


def sample(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid sample ``i`` minutes after T0."""
    data: dict[str, Any] = {
        "at": (T0 + dt.timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
        "instrument": "NVDA",
        "predicted": 1,
        "probability": 0.62,
        "outcome": i % 2,
        "trade_count": 3,
        "pnl": "-120.50",
        "pnl_kind": "trade",
        "features": {"ret_1d": 0.012, "vol_20d": 0.31},
    }
    data.update(overrides)
    return data


def samples(n: int, start: int = 0, **overrides: Any) -> list[dict[str, Any]]:
    return [sample(start + i, **overrides) for i in range(n)]
