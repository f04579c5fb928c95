# ruff: noqa: RUF002  (formulas are written with their mathematical symbols)
"""Robustness: performance by volatility regime and in named stress windows.

Volatility regime of a period. The period ending at close t (return rₜ = Pₜ/Pₜ₋₁ − 1) is
classified by the volatility known when its position was taken, at close t−1: σₜ₋₁ = the
standard deviation (ddof=1) of the asset's returns over the ``window`` periods ending at
t−1. The regimes are the terciles of σ over the sample (edges its 1/3 and 2/3 quantiles,
numpy's linear interpolation): low ≤ q₁ < medium ≤ q₂ < high. Periods before the window is
full have no regime. Metrics within a regime are those of ``backtest.return_metrics`` on
the regime's periods taken together (compounded in date order; the drawdown is that of
this concatenation, so it reads as "the worst run of losses within that regime").

Stress windows. A window [start, end] holds the periods ending after the close of
``start`` up to the close of ``end`` (from the start close to the end close). It is
evaluated only when the data covers it: the first period ends on or before ``start`` and
the last on or after ``end``; otherwise it is reported as not covered, with the data's range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models_registry.checks._json import jsonable
from models_registry.checks.backtest import BacktestResult, return_metrics
from models_registry.checks.errors import InvalidParameter, InvalidValues
from models_registry.checks.inputs import check_min_rows, check_monotonic
from models_registry.checks.metrics import classification_metrics

REGIMES = ("low", "medium", "high")


@dataclass(frozen=True)
class StressWindow:
    name: str
    start: str
    end: str
    description: str = ""


DEFAULT_STRESS_WINDOWS: tuple[StressWindow, ...] = (
    StressWindow("dotcom", "2000-03-10", "2002-10-09", "Dot-com crash: Nasdaq Composite peak to trough"),
    StressWindow("gfc", "2007-10-09", "2009-03-09", "Global financial crisis: S&P 500 peak to trough"),
    StressWindow("covid", "2020-02-19", "2020-03-23", "COVID-19 crash: S&P 500 peak to trough"),
)


def _as_frame(returns: pd.Series | pd.DataFrame) -> pd.DataFrame:
    if isinstance(returns, pd.Series):
        returns = returns.to_frame(returns.name or "strategy")
    if not isinstance(returns, pd.DataFrame) or not isinstance(returns.index, pd.DatetimeIndex):
        raise InvalidValues("returns must be a pandas Series or DataFrame with a DatetimeIndex")
    check_monotonic(returns.index, "the return dates")
    return returns.astype(float)


def volatility_regimes(prices: pd.Series, *, window: int = 20) -> tuple[pd.Series, list[float]]:
    """Each period's regime ("low", "medium", "high" or None), indexed by the period's end date, and the two edges."""
    if window < 2:
        raise InvalidParameter(f"the volatility window must be at least 2, not {window}")
    if not isinstance(prices, pd.Series) or not isinstance(prices.index, pd.DatetimeIndex):
        raise InvalidValues("prices must be a pandas Series of closes with a DatetimeIndex")
    check_monotonic(prices.index, "the price dates")
    returns = prices.astype(float).pct_change().iloc[1:]
    check_min_rows(len(returns), window + 3, "the price series")
    sigma = returns.rolling(window).std(ddof=1).shift(1)  # known at the previous close
    known = sigma.dropna()
    edges = [float(v) for v in np.quantile(known.to_numpy(), [1 / 3, 2 / 3])]
    codes = np.searchsorted(edges, sigma.to_numpy(), side="left")  # ≤ q1 → 0, ≤ q2 → 1, else 2
    labels = np.where(sigma.isna().to_numpy(), None, np.array(REGIMES, dtype=object)[np.minimum(codes, 2)])
    return pd.Series(labels, index=returns.index, name="regime", dtype=object), edges


def metrics_by_volatility_regime(
    returns: pd.Series | pd.DataFrame,
    prices: pd.Series,
    *,
    window: int = 20,
    periods_per_year: float = 252,
) -> dict[str, Any]:
    """``return_metrics`` of each column of ``returns`` (period returns indexed by end date) per volatility regime."""
    frame = _as_frame(returns)
    regimes, edges = volatility_regimes(prices, window=window)
    aligned = regimes.reindex(frame.index)
    out: dict[str, Any] = {"window": window, "edges": edges, "regimes": {}}
    for regime in REGIMES:
        rows = frame.loc[(aligned == regime).to_numpy()]
        out["regimes"][regime] = {
            "n_periods": len(rows),
            **{
                str(col): return_metrics(rows[col].to_numpy(), periods_per_year=periods_per_year) if len(rows) else None
                for col in frame.columns
            },
        }
    out["unclassified_periods"] = int(aligned.isna().sum())
    return jsonable(out)


def classification_by_regime(
    regimes: pd.Series, y_true: pd.Series, y_pred: pd.Series, y_score: pd.Series | None = None
) -> dict[str, Any]:
    """``classification_metrics`` per regime; the four Series share a DatetimeIndex (the prediction dates)."""
    out: dict[str, Any] = {}
    aligned = regimes.reindex(y_true.index)
    for regime in REGIMES:
        mask = (aligned == regime).to_numpy()
        if not mask.any():
            out[regime] = None
            continue
        out[regime] = classification_metrics(
            y_true.to_numpy()[mask],
            y_pred.reindex(y_true.index).to_numpy()[mask],
            None if y_score is None else y_score.reindex(y_true.index).to_numpy()[mask],
        )
    return out


def stress_windows(
    returns: pd.Series | pd.DataFrame,
    *,
    windows: Sequence[StressWindow] = DEFAULT_STRESS_WINDOWS,
    periods_per_year: float = 252,
) -> dict[str, Any]:
    """``return_metrics`` (with dates) of each column of ``returns`` in each stress window the data covers."""
    frame = _as_frame(returns)
    if frame.empty:
        check_min_rows(0, 1, "the return series")
    first, last = frame.index[0], frame.index[-1]
    out: dict[str, Any] = {}
    for window in windows:
        start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
        if start >= end:
            raise InvalidParameter(
                f"stress window {window.name!r} starts ({window.start}) after it ends ({window.end})"
            )
        entry: dict[str, Any] = {"start": window.start, "end": window.end, "description": window.description}
        if first > start or last < end:
            entry.update(
                covered=False,
                reason=f"the data runs from {first.date()} to {last.date()} and does not cover the window",
            )
            out[window.name] = entry
            continue
        inside = (frame.index > start) & (frame.index <= end)
        rows = frame.loc[inside]
        before = frame.index[frame.index <= start][-1]
        dates = pd.DatetimeIndex([before, *rows.index])
        entry.update(covered=True, n_periods=len(rows))
        for col in frame.columns:
            entry[str(col)] = return_metrics(rows[col].to_numpy(), periods_per_year=periods_per_year, dates=dates)
        out[window.name] = entry
    return jsonable(out)


def backtest_robustness(
    result: BacktestResult,
    prices: pd.Series,
    *,
    windows: Sequence[StressWindow] = DEFAULT_STRESS_WINDOWS,
    window: int = 20,
) -> dict[str, Any]:
    """Both robustness views of a backtest, for the strategy and its buy-and-hold benchmark."""
    returns = pd.DataFrame({"strategy": result.returns, "benchmark": result.benchmark_returns})
    periods = float(result.parameters.get("periods_per_year", 252))
    return {
        "volatility_regimes": metrics_by_volatility_regime(returns, prices, window=window, periods_per_year=periods),
        "stress_windows": stress_windows(returns, windows=windows, periods_per_year=periods),
    }
