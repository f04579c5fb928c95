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


# A deployable version on real data: the shared fixture chain (tests/conftest.py: submitted ->
# validated -> approved) with real NVDA datasets and a logistic regression on daily_prices_v1.
NVDA_SPLITS = {
    "training": ("2006-01-01", "2007-12-31"),
    "validation": ("2008-01-01", "2008-12-31"),
    "test": ("2009-01-01", "2011-12-31"),
}
RULES = {
    "required_columns": ["Date", "Adj Close", "Volume"],
    "unique": ["Date"],
    "ranges": {"Adj Close": {"min": 0.0001}, "Volume": {"min": 0}},
    "monotonic_timestamps": True,
}


@functools.cache
def dataset_csv(role: str) -> bytes:
    prices = market.load_prices("NVDA")
    start, end = NVDA_SPLITS[role]
    part = prices[(prices["Date"] >= start) & (prices["Date"] <= end)]
    return part.to_csv(index=False, date_format="%Y-%m-%d", float_format="%.6f").encode()


@functools.cache
def _artifact() -> bytes:
    import skops.io as sio

    nvda = _frames()["NVDA"]
    train = nvda[(nvda["Date"] >= NVDA_SPLITS["training"][0]) & (nvda["Date"] <= NVDA_SPLITS["training"][1])]
    return sio.dumps(LogisticRegression(C=1.0, max_iter=500).fit(train[market.FEATURES], train["next_up"]))


@pytest.fixture
def split_datasets(make_dataset, owner):
    from models_registry import services

    made = {}
    for role in NVDA_SPLITS:
        dataset = make_dataset(name=f"nvda-{role}", content=dataset_csv(role), rules=RULES)
        made[role] = services.dataset_validate(actor=owner, dataset=dataset)
    return made


@pytest.fixture
def make_version(owner, make_model):
    from models_registry import services

    def make(model=None, **overrides):
        data = {"version": "1.0.0", "artifact": _artifact(), "feature_pipeline": "daily_prices_v1", "target": "next_up"}
        data.update(overrides)
        model = model or make_model()
        return services.model_version_create(actor=data.pop("actor", model.owner), model=model, **data)

    return make
