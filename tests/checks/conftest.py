from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

MARKET = Path(__file__).resolve().parents[2] / "governance" / "demo" / "data" / "market"


def assert_json_safe(value: Any) -> None:
    """Plain JSON types only (no numpy scalars), and no NaN or infinity anywhere."""
    json.dumps(value, allow_nan=False)

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for key, item in v.items():
                assert isinstance(key, str)
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)
        else:
            assert v is None or type(v) in (bool, int, float, str), f"{v!r} is a {type(v).__name__}"

    walk(value)


def load_close(ticker: str) -> pd.Series:
    path = next(MARKET.glob(f"{ticker.lower()}-*.csv"))
    frame = pd.read_csv(path, parse_dates=["Date"])
    return frame.set_index("Date")["Adj Close"].astype(float)


@pytest.fixture(scope="session")
def nvda_close() -> pd.Series:
    return load_close("NVDA")


@pytest.fixture(scope="session")
def orcl_close() -> pd.Series:
    return load_close("ORCL")


@pytest.fixture
def random_walk() -> pd.Series:
    """500 business days of a seeded geometric random walk."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2010-01-04", periods=500)
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, len(dates)))), index=dates)
