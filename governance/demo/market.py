"""Features and targets from real daily prices, for the demo's models.

Every feature at day t uses prices up to and including t; targets look one day ahead
(t -> t+1), so a model trained on them never sees the future through its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models_registry import features

DATA_DIR = Path(__file__).resolve().parent / "data" / "market"

# The feature builder lives with the registry's feature pipelines (daily_prices_v1), so the
# risk assessment rebuilds exactly the features the demo trains on.
FEATURES = features.FEATURES
LOOKBACK_DAYS = features.LOOKBACK_DAYS
build_features = features.build_features


@dataclass(frozen=True)
class Split:
    name: str
    start: str
    end: str


SPLITS = (
    Split("train", "1990-01-01", "2008-12-31"),
    Split("validation", "2009-01-01", "2011-12-31"),
    Split("test", "2012-01-01", "2014-12-31"),
)


def price_file(ticker: str) -> Path:
    matches = sorted(DATA_DIR.glob(f"{ticker.lower()}-*.csv"))
    if not matches:
        raise FileNotFoundError(f"no price file for {ticker} in {DATA_DIR}")
    return matches[0]


def load_prices(ticker: str) -> pd.DataFrame:
    frame = pd.read_csv(price_file(ticker), parse_dates=["Date"])
    return frame.sort_values("Date").reset_index(drop=True)


def split_prices(prices: pd.DataFrame, split: Split) -> pd.DataFrame:
    mask = (prices["Date"] >= split.start) & (prices["Date"] <= split.end)
    return prices.loc[mask].reset_index(drop=True)


def features_for_split(features: pd.DataFrame, split: Split) -> pd.DataFrame:
    mask = (features["Date"] >= split.start) & (features["Date"] <= split.end)
    return features.loc[mask].reset_index(drop=True)
