"""Helpers of the anomaly tests: live samples and their ingestion. The deployed version with a
rollback target they run on (``deployed_with_target``) is shared: tests/fixtures_deployment.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
from django.utils import timezone

from governance import monitoring_services


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
