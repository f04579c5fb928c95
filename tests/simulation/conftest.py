"""The real pool the simulation tests draw from: the demo's logistic direction model trained on
NVDA 2008-2009 (as tests/assessments trains it) applied to the real rows of NVDA and ORCL."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from governance import live_simulation as ls
from governance.demo import market


@functools.cache
def _frames() -> dict[str, object]:
    return {ticker: market.build_features(market.load_prices(ticker)) for ticker in ("NVDA", "ORCL")}


@functools.cache
def _pool() -> ls.Pool:
    frames = _frames()
    nvda = frames["NVDA"]
    train = nvda[(nvda["Date"] >= "2008-01-01") & (nvda["Date"] <= "2009-12-31")]
    model = LogisticRegression(C=1.0, max_iter=500).fit(train[market.FEATURES], train["next_up"])
    pools = []
    for ticker, built in frames.items():
        part = built[(built["Date"] >= "2010-01-01") & (built["Date"] <= "2011-12-31")].reset_index(drop=True)
        pools.append(
            ls.pool_from_frame(
                instrument=ticker,
                dates=part["Date"],
                features=part[market.FEATURES],
                outcome=part["next_up"],
                next_return=np.expm1(part["next_return"].to_numpy()),
                model=model,
            )
        )
    return ls.merge_pools(pools)


@pytest.fixture
def real_pool() -> ls.Pool:
    return _pool()


@pytest.fixture
def real_frames() -> dict[str, object]:
    return _frames()
