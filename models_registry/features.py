"""Feature pipelines: how a version's datasets become the model's inputs and its target.

A version names its pipeline (``ModelVersion.feature_pipeline``) and its target column
(``ModelVersion.target``); the risk assessment rebuilds the features of each dataset with
the same pipeline, so what is evaluated is what the model was trained on. Pipelines are
named and versioned: changing what one computes means registering a new name (``..._v2``),
never editing the old one, or past assessments could no longer be reproduced.

Every pipeline is deterministic (no randomness, no clock) and uses, for the row dated t,
only data known at the close of t; targets may look ahead (that is what a target is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from models_registry.checks.errors import CheckError, FeatureMismatch

TargetKind = Literal["classification", "regression"]


class MissingColumns(CheckError):
    """The dataset lacks columns the pipeline reads."""

    code = "missing_columns"


@dataclass(frozen=True)
class FeatureFrame:
    """The output of a pipeline on one dataset: one row per date, features, target, prices."""

    dates: pd.DatetimeIndex
    features: pd.DataFrame  # indexed by ``dates``
    target: pd.Series  # indexed by ``dates``
    prices: pd.Series | None  # closes indexed by ``dates`` (for the backtest), if the pipeline knows them


@dataclass(frozen=True)
class FeaturePipeline:
    name: str
    label: str
    description: str
    # Targets the pipeline computes, with their kind; empty means "a column of the dataset".
    targets: dict[str, TargetKind] = field(default_factory=dict)
    # Columns of the dataset the pipeline reads (besides the time column).
    reads: tuple[str, ...] = ()
    build: Callable[[pd.DataFrame, pd.Series, str, list[str] | None], FeatureFrame] | None = None

    def target_error(self, target: str) -> str | None:
        """Why ``target`` is not a target of this pipeline, or None."""
        if self.targets:
            if target not in self.targets:
                return f"pipeline {self.name} offers the targets {', '.join(sorted(self.targets))}, not {target!r}"
            return None
        if not target.strip():
            return f"pipeline {self.name} takes the target from a column of the dataset: name the column"
        return None


def _times_index(times: pd.Series) -> pd.DatetimeIndex:
    """Dates as naive UTC: the datasets' times are parsed as UTC, and the checks compare them
    with naive calendar dates (stress windows), which mean UTC days here."""
    index = pd.DatetimeIndex(times.to_numpy(), name="date")
    return index.tz_convert(None) if index.tz is not None else index


# --- columns: the dataset's columns are the features --------------------------------------


def _build_columns(frame: pd.DataFrame, times: pd.Series, target: str, expected: list[str] | None) -> FeatureFrame:
    if target not in frame.columns:
        raise MissingColumns(
            f"the target column {target!r} is not in the dataset (columns: {', '.join(map(str, frame.columns))})",
            missing=[target],
        )
    if expected:
        missing = [c for c in expected if c not in frame.columns]
        if missing:
            raise FeatureMismatch(missing=missing, extra=[])
        names = list(expected)
    else:
        # Without recorded feature names, every numeric column but the target is a feature.
        names = [
            str(c) for c in frame.columns if c != target and c != times.name and pd.api.types.is_numeric_dtype(frame[c])
        ]
    index = _times_index(times)
    features = frame[names].set_axis(index)
    prices = None
    for column in ("Adj Close", "Close"):
        if column in frame.columns and column not in names and pd.api.types.is_numeric_dtype(frame[column]):
            prices = frame[column].astype(float).set_axis(index)
            break
    return FeatureFrame(dates=index, features=features, target=frame[target].set_axis(index), prices=prices)


# --- daily_prices_v1: features from daily OHLCV prices -------------------------------------

FEATURES = ["ret_1", "ret_5", "ret_20", "vol_20", "ma_gap_10", "ma_gap_50", "volume_z_20"]
LOOKBACK_DAYS = 50


def build_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Features per day plus targets ``next_return`` and ``next_up``; warm-up rows dropped.

    ``prices`` has ``Date``, ``Adj Close`` and ``Volume`` in date order. The output keeps
    ``Date`` and ``Adj Close`` (for backtests), the seven ``FEATURES`` and both targets.
    """
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
    out["Adj Close"] = close
    out = out.iloc[LOOKBACK_DAYS:-1]
    return out.replace([np.inf, -np.inf], np.nan).dropna().reset_index(drop=True)


def _from_built(built: pd.DataFrame, names: list[str], target: str) -> FeatureFrame:
    index = _times_index(built["Date"])
    return FeatureFrame(
        dates=index,
        features=built[names].set_axis(index),
        target=built[target].set_axis(index),
        prices=built["Adj Close"].astype(float).set_axis(index),
    )


def _daily_prices(frame: pd.DataFrame, times: pd.Series, target: str, expected: list[str] | None) -> FeatureFrame:
    missing = [c for c in ("Adj Close", "Volume") if c not in frame.columns]
    if missing:
        raise MissingColumns(
            f"pipeline daily_prices_v1 needs the columns {', '.join(missing)}, which the dataset lacks",
            missing=missing,
        )
    if expected:
        unknown = [c for c in expected if c not in FEATURES]
        if unknown:
            raise FeatureMismatch(missing=unknown, extra=[])
    names = list(expected) if expected else list(FEATURES)
    source = pd.DataFrame(
        {"Date": times.to_numpy(), "Adj Close": frame["Adj Close"].to_numpy(), "Volume": frame["Volume"].to_numpy()}
    )
    return _from_built(build_features(source), names, target)


PIPELINES: dict[str, FeaturePipeline] = {
    "columns": FeaturePipeline(
        name="columns",
        label="Dataset columns",
        description="The dataset's columns are the features; the target is a named column.",
        build=_build_columns,
    ),
    "daily_prices_v1": FeaturePipeline(
        name="daily_prices_v1",
        label="Daily prices v1",
        description=(
            "From daily OHLCV prices: 1/5/20-day log returns, 20-day volatility, gaps to the 10- and "
            "50-day moving averages, 20-day volume z-score; targets next_up and next_return."
        ),
        targets={"next_up": "classification", "next_return": "regression"},
        reads=("Adj Close", "Volume"),
        build=_daily_prices,
    ),
}
PIPELINE_CHOICES = [(name, pipeline.label) for name, pipeline in PIPELINES.items()]
DEFAULT_PIPELINE = "columns"


def get(name: str) -> FeaturePipeline:
    try:
        return PIPELINES[name]
    except KeyError:
        raise KeyError(f"unknown feature pipeline {name!r} (known: {', '.join(PIPELINES)})") from None


def build(name: str, frame: pd.DataFrame, times: pd.Series, *, target: str, expected: list[str] | None) -> FeatureFrame:
    """The features of ``frame`` (rows in time order, ``times`` its parsed time column)."""
    pipeline = get(name)
    assert pipeline.build is not None
    return pipeline.build(frame, times, target, expected)
