"""Features and targets from real daily prices, for the demo's models.

Every feature at day t uses prices up to and including t; targets look one day ahead
(t -> t+1), so a model trained on them never sees the future through its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data" / "market"

FEATURES = ["ret_1", "ret_5", "ret_20", "vol_20", "ma_gap_10", "ma_gap_50", "volume_z_20"]
LOOKBACK_DAYS = 50


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


def build_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Features per day plus targets ``next_return`` and ``next_up``; warm-up rows dropped."""
    close = prices["Adj Close"].astype(float)
    log_close = np.log(close)
    ret_1 = log_close.diff()
    out = pd.DataFrame({"Date": prices["Date"]})
    out["ret_1"] = ret_1
    out["ret_5"] = log_close.diff(5)
    out["ret_20"] = log_close.diff(20)
    out["vol_20"] = ret_1.rolling(20).std()
    out["ma_gap_10"] = close / close.rolling(10).mean() - 1.0
    out["ma_gap_50"] = close / close.rolling(50).mean() - 1.0
    volume = prices["Volume"].astype(float)
    out["volume_z_20"] = (volume - volume.rolling(20).mean()) / volume.rolling(20).std()
    out["next_return"] = ret_1.shift(-1)
    out["next_up"] = (out["next_return"] > 0).astype(int)
    out = out.iloc[LOOKBACK_DAYS:-1]
    return out.replace([np.inf, -np.inf], np.nan).dropna().reset_index(drop=True)


def features_for_split(features: pd.DataFrame, split: Split) -> pd.DataFrame:
    mask = (features["Date"] >= split.start) & (features["Date"] <= split.end)
    return features.loc[mask].reset_index(drop=True)
