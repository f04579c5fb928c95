# ruff: noqa: RUF002, RUF003  (formulas are written with their mathematical symbols)
"""Vectorised backtest of a model's signals on real close prices, with costs and a buy-and-hold benchmark.

Timing (no look-ahead). Prices P₀…Pₙ₋₁ are closes on strictly increasing dates; the asset's
simple return of period t is rₜ = Pₜ / Pₜ₋₁ − 1 (t ≥ 1). The signal sₜ dated t is known at
the close of day t; the position it gives, wₜ, is traded at that close and held over the
next period, so it earns rₜ₊₁:

    gross return of period t+1 = wₜ · rₜ₊₁           (w = signals.shift(1) against returns)

The last signal has no following period and is not used. Whether sₜ was computed only
from data up to t is the caller's promise (``run_backtest`` cannot tell); what it
guarantees is that sₜ never earns rₜ or any earlier return. The tests show it: the
perfect-foresight signal sign(rₜ₊₁) dated t earns every move, while sign(rₜ) dated t, the
same information known one day later, earns nothing systematic.

Costs. Turnover at t is Δₜ = |wₜ − wₜ₋₁| (w₋₁ = 0: the first position is bought). Each unit
of turnover costs (cost_bps + slippage_bps) / 10,000 of equity, charged to the period the
position is held:

    net return of period t+1 = wₜ · rₜ₊₁ − Δₜ · (cost_bps + slippage_bps) / 10⁴

(additive, so a known trade sequence loses exactly its bps; the position is marked to
market at the end, not liquidated).

Signals. ``signal_type="position"``: values in [−1, 1] (−1 short, 0 flat, +1 long, fractions
scale). ``signal_type="probability"``: the predicted probability p of an up move, mapped
by ``signals_from_probabilities``: +1 if p > threshold, −1 if p < threshold (0 when
``long_only``), 0 if equal. Missing signals within ``nan_tolerance`` are flat.

Sizing. ``"signal"``: wₜ = sₜ (fraction of equity). ``"sign"``: wₜ = sign(sₜ) (all in).
``"vol_target"``: wₜ = sₜ · min(max_leverage, target_vol / σ̂ₜ), σ̂ₜ the annualised standard
deviation of the asset's returns over the ``vol_window`` periods ending at t (known at t);
flat until the window is full.

Metrics (R the net period returns, m of them, q = periods_per_year, Eₜ the equity, E₀ = 1):

* total_return = Eₘ − 1; annualised_return = (1 + total_return)^(q/m) − 1 (geometric)
* annualised_volatility = std(R, ddof=1) · √q
* sharpe_ratio = mean(R − r_f/q) / std(R, ddof=1) · √q (Sharpe 1994; r_f the annual risk-free rate)
* sortino_ratio = mean(R − r_f/q) / √(mean(min(R − r_f/q, 0)²)) · √q (Sortino & Price 1994,
  downside deviation over all periods)
* max_drawdown = maxₜ (1 − Eₜ / max_{s≤t} Eₛ), a positive fraction; its peak, trough and recovery
  dates; max_drawdown_duration = periods from that peak to the recovery (the first close back
  at or above the peak), or to the last close if it has not recovered;
  longest_drawdown_duration the same for the longest drawdown
* calmar_ratio = annualised_return / max_drawdown (Young 1991, over the whole sample)
* hit_rate = share of the periods with a non-zero position whose net return is > 0
* turnover = Σ Δₜ / years (times equity traded per year); total_turnover = Σ Δₜ
* n_trades = number of t with Δₜ > 0 (the first entry counts); exposure = share of periods with wₜ ≠ 0
* costs = Σ Δₜ · (cost_bps + slippage_bps) / 10⁴

The buy-and-hold benchmark is w = 1 throughout with the same cost model (one entry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from models_registry.checks._json import jsonable, with_reasons
from models_registry.checks.errors import InvalidParameter, InvalidValues
from models_registry.checks.inputs import check_min_rows, check_monotonic, check_nan_fraction

SignalType = Literal["position", "probability"]
Sizing = Literal["signal", "sign", "vol_target"]
_UNDERWATER_EPS = 1e-12


def signals_from_probabilities(
    probabilities: pd.Series, *, threshold: float = 0.5, long_only: bool = False
) -> pd.Series:
    """+1 where p > threshold, −1 (or 0 when ``long_only``) where p < threshold, 0 where equal; NaN stays NaN."""
    p = probabilities.astype(float)
    finite = p.dropna()
    if ((finite < 0) | (finite > 1)).any():
        raise InvalidValues("probabilities must be between 0 and 1")
    short = 0.0 if long_only else -1.0
    out = pd.Series(np.where(p > threshold, 1.0, np.where(p < threshold, short, 0.0)), index=p.index)
    return out.where(p.notna())


def drawdown_stats(equity: np.ndarray) -> dict[str, Any]:
    """Maximum drawdown (positive fraction) with positions of its peak, trough and recovery, and durations.

    Positions are indices into ``equity``; ``recovery`` is None if the equity never gets back
    to the peak. Durations count periods from the peak to the recovery (or to the end).
    """
    running_max = np.maximum.accumulate(equity)
    drawdown = 1.0 - equity / running_max
    n = len(equity)
    underwater = drawdown > _UNDERWATER_EPS
    if not underwater.any():
        return {
            "max_drawdown": 0.0,
            "peak": None,
            "trough": None,
            "recovery": None,
            "max_drawdown_duration": 0,
            "longest_drawdown_duration": 0,
            "drawdown": drawdown,
        }
    edges = np.diff(np.concatenate([[False], underwater, [False]]).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1  # last underwater position of each episode
    peaks = starts - 1  # position 0 is never underwater (E₀ is its own maximum)
    recovered = ends < n - 1
    durations = np.where(recovered, ends + 1 - peaks, ends - peaks)
    trough = int(np.argmax(drawdown))
    episode = int(np.searchsorted(starts, trough, side="right") - 1)
    return {
        "max_drawdown": float(drawdown[trough]),
        "peak": int(peaks[episode]),
        "trough": trough,
        "recovery": int(ends[episode] + 1) if recovered[episode] else None,
        "max_drawdown_duration": int(durations[episode]),
        "longest_drawdown_duration": int(durations.max()),
        "drawdown": drawdown,
    }


def return_metrics(
    returns: np.ndarray | pd.Series,
    *,
    periods_per_year: float = 252,
    risk_free_rate: float = 0.0,
    positions: np.ndarray | None = None,
    dates: pd.DatetimeIndex | None = None,
) -> dict[str, Any]:
    """The performance metrics of a series of period returns (formulas in the module docstring).

    ``positions`` (the position held over each period) enables hit rate and exposure; ``dates``
    (the end date of each period, with the start date of the first period prepended, so one
    longer than ``returns``) gives drawdown dates and calendar durations.
    """
    r = np.asarray(returns, dtype=float)
    m = len(r)
    reasons: dict[str, str] = {}
    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    total = float(equity[-1] - 1.0)
    years = m / periods_per_year
    values: dict[str, Any] = {"n_periods": m, "total_return": total}
    if m == 0:
        values["annualised_return"] = None
        reasons["annualised_return"] = "no periods"
    elif equity[-1] <= 0:
        values["annualised_return"] = -1.0
    else:
        values["annualised_return"] = float(equity[-1] ** (1.0 / years) - 1.0)
    excess = r - risk_free_rate / periods_per_year
    std = float(np.std(r, ddof=1)) if m > 1 else float("nan")
    values["annualised_volatility"] = std * np.sqrt(periods_per_year) if m > 1 else None
    if m < 2:
        reasons["annualised_volatility"] = reasons["sharpe_ratio"] = "fewer than two periods"
        values["sharpe_ratio"] = None
    elif std == 0:
        values["sharpe_ratio"] = None
        reasons["sharpe_ratio"] = "returns have zero volatility"
    else:
        values["sharpe_ratio"] = float(excess.mean() / std * np.sqrt(periods_per_year))
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2))) if m else 0.0
    if downside == 0:
        values["sortino_ratio"] = None
        reasons["sortino_ratio"] = "no period below the risk-free rate (zero downside deviation)"
    else:
        values["sortino_ratio"] = float(excess.mean() / downside * np.sqrt(periods_per_year))
    dd = drawdown_stats(equity)
    values["max_drawdown"] = dd["max_drawdown"]
    values["max_drawdown_duration"] = dd["max_drawdown_duration"]
    values["longest_drawdown_duration"] = dd["longest_drawdown_duration"]
    if dates is not None:
        for key in ("peak", "trough", "recovery"):
            values[f"max_drawdown_{key}"] = None if dd[key] is None else dates[dd[key]].date().isoformat()
        if dd["peak"] is not None:
            end = dates[dd["recovery"]] if dd["recovery"] is not None else dates[-1]
            values["max_drawdown_duration_days"] = int((end - dates[dd["peak"]]).days)
        else:
            values["max_drawdown_duration_days"] = 0
        if dd["peak"] is None:
            for key in ("peak", "trough", "recovery"):
                reasons[f"max_drawdown_{key}"] = "no drawdown"
        elif dd["recovery"] is None:
            reasons["max_drawdown_recovery"] = "not recovered by the end of the data"
    if dd["max_drawdown"] == 0 or values["annualised_return"] is None:
        values["calmar_ratio"] = None
        reasons["calmar_ratio"] = "no drawdown" if dd["max_drawdown"] == 0 else "no annualised return"
    else:
        values["calmar_ratio"] = float(values["annualised_return"] / dd["max_drawdown"])
    if positions is not None:
        held = np.asarray(positions, dtype=float) != 0
        values["exposure"] = float(held.mean()) if m else None
        values["hit_rate"] = float((r[held] > 0).mean()) if held.any() else None
        if not held.any():
            reasons["hit_rate"] = "never in the market"
    return with_reasons(values, reasons)


def _float_list(values: np.ndarray) -> list[float | None]:
    """Plain floats, fast (``tolist``), with None for any non-finite value."""
    if np.isfinite(values).all():
        return values.astype(float).tolist()
    return jsonable(values)


@dataclass(frozen=True)
class BacktestResult:
    """Period returns and equity curves (indexed by date) with the JSON-safe metrics."""

    returns: pd.Series
    positions: pd.Series
    equity: pd.Series
    benchmark_returns: pd.Series
    benchmark_equity: pd.Series
    metrics: dict[str, Any]
    benchmark: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, include_curves: bool = True) -> dict[str, Any]:
        """JSON-safe: metrics, benchmark metrics, parameters and (for charts) both equity curves."""
        out: dict[str, Any] = {
            "metrics": self.metrics,
            "benchmark": self.benchmark,
            "parameters": self.parameters,
        }
        if include_curves:
            out["equity_curve"] = {
                "dates": self.equity.index.strftime("%Y-%m-%d").tolist(),
                "strategy": _float_list(self.equity.to_numpy()),
                "benchmark": _float_list(self.benchmark_equity.to_numpy()),
            }
        return out


def _simulate(asset_returns: np.ndarray, positions: np.ndarray, cost_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Net period returns (length n−1) and turnover at each decision date (length n−1)."""
    held = positions[:-1]  # wₜ for t = 0..n−2, earning rₜ₊₁
    turnover = np.abs(np.diff(np.concatenate([[0.0], held])))
    return held * asset_returns[1:] - turnover * cost_rate, turnover


def _validated_prices(prices: pd.Series, min_periods: int) -> pd.Series:
    if not isinstance(prices, pd.Series) or not isinstance(prices.index, pd.DatetimeIndex):
        raise InvalidValues("prices must be a pandas Series of closes with a DatetimeIndex")
    check_min_rows(len(prices), min_periods + 1, "the price series")
    check_monotonic(prices.index, "the price dates")
    check_nan_fraction(prices.rename("close"), 0.0, "the price series")
    values = prices.to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values <= 0).any():
        first = int(np.flatnonzero(~np.isfinite(values) | (values <= 0))[0])
        raise InvalidValues(f"prices must be positive and finite; position {first} ({prices.index[first]}) is not")
    return prices.astype(float)


def run_backtest(
    prices: pd.Series,
    signals: pd.Series,
    *,
    cost_bps: float = 0.0,
    slippage_bps: float = 0.0,
    periods_per_year: float = 252,
    signal_type: SignalType = "position",
    probability_threshold: float = 0.5,
    long_only: bool = False,
    sizing: Sizing = "signal",
    target_volatility: float = 0.10,
    vol_window: int = 20,
    max_leverage: float = 1.0,
    risk_free_rate: float = 0.0,
    nan_tolerance: float = 0.0,
    min_periods: int = 20,
) -> BacktestResult:
    """Backtest ``signals`` (dated at the close they are known) on ``prices``; see the module docstring.

    ``signals`` is aligned to the price dates by index: dates without a signal are missing
    values, allowed up to ``nan_tolerance`` (a fraction) and then flat. Raises a
    ``CheckError`` (non-monotonic dates, too few prices, missing values, signals outside
    their range, bad parameters) before computing anything.
    """
    if cost_bps < 0 or slippage_bps < 0:
        raise InvalidParameter(f"costs must be non-negative (cost_bps={cost_bps}, slippage_bps={slippage_bps})")
    if periods_per_year <= 0:
        raise InvalidParameter(f"periods_per_year must be positive, not {periods_per_year}")
    if sizing not in ("signal", "sign", "vol_target"):
        raise InvalidParameter(f"unknown sizing {sizing!r} (signal, sign, vol_target)")
    if signal_type not in ("position", "probability"):
        raise InvalidParameter(f"unknown signal_type {signal_type!r} (position, probability)")
    if sizing == "vol_target" and (target_volatility <= 0 or max_leverage <= 0 or vol_window < 2):
        raise InvalidParameter("vol_target needs target_volatility > 0, max_leverage > 0 and vol_window >= 2")
    prices = _validated_prices(prices, min_periods)
    if not isinstance(signals, pd.Series):
        raise InvalidValues("signals must be a pandas Series indexed by date")
    if not signals.index.equals(prices.index):
        check_monotonic(signals.index, "the signal dates")
        signals = signals.reindex(prices.index)
    check_nan_fraction(signals.rename("signal"), nan_tolerance, "the signals")
    if signal_type == "probability":
        signals = signals_from_probabilities(signals, threshold=probability_threshold, long_only=long_only)
    raw = signals.to_numpy(dtype=float)
    missing = np.isnan(raw)
    raw = np.where(missing, 0.0, raw)
    if not np.isfinite(raw).all() or (np.abs(raw) > 1).any():
        raise InvalidValues("position signals must be between -1 and 1")
    if long_only:
        raw = np.maximum(raw, 0.0)
    close = prices.to_numpy()
    asset = np.empty_like(close)
    asset[0] = np.nan
    asset[1:] = close[1:] / close[:-1] - 1.0
    if sizing == "sign":
        positions = np.sign(raw)
    elif sizing == "vol_target":
        sigma = pd.Series(asset).rolling(vol_window).std(ddof=1).to_numpy() * np.sqrt(periods_per_year)
        with np.errstate(divide="ignore"):
            leverage = np.minimum(max_leverage, np.where(sigma > 0, target_volatility / sigma, max_leverage))
        positions = np.where(np.isnan(sigma), 0.0, raw * leverage)
    else:
        positions = raw
    cost_rate = (cost_bps + slippage_bps) / 1e4
    net, turnover = _simulate(asset, positions, cost_rate)
    bench_positions = np.ones_like(close)
    bench_net, bench_turnover = _simulate(asset, bench_positions, cost_rate)
    dates = prices.index
    years = len(net) / periods_per_year

    def summary(r: np.ndarray, held: np.ndarray, dturn: np.ndarray) -> dict[str, Any]:
        result = return_metrics(
            r, periods_per_year=periods_per_year, risk_free_rate=risk_free_rate, positions=held, dates=dates
        )
        result.update(
            turnover=float(dturn.sum() / years),
            total_turnover=float(dturn.sum()),
            n_trades=int((dturn > 0).sum()),
            costs=float(dturn.sum() * cost_rate),
        )
        return result

    metrics = summary(net, positions[:-1], turnover)
    benchmark = summary(bench_net, bench_positions[:-1], bench_turnover)
    metrics["excess_total_return"] = (
        None
        if metrics["total_return"] is None or benchmark["total_return"] is None
        else metrics["total_return"] - benchmark["total_return"]
    )
    metrics["missing_signals"] = int(missing.sum())
    period_index = dates[1:]
    equity = pd.Series(np.concatenate([[1.0], np.cumprod(1.0 + net)]), index=dates, name="strategy")
    bench_equity = pd.Series(np.concatenate([[1.0], np.cumprod(1.0 + bench_net)]), index=dates, name="benchmark")
    parameters = jsonable(
        {
            "cost_bps": cost_bps,
            "slippage_bps": slippage_bps,
            "periods_per_year": periods_per_year,
            "signal_type": signal_type,
            "probability_threshold": probability_threshold if signal_type == "probability" else None,
            "long_only": long_only,
            "sizing": sizing,
            "target_volatility": target_volatility if sizing == "vol_target" else None,
            "vol_window": vol_window if sizing == "vol_target" else None,
            "max_leverage": max_leverage if sizing == "vol_target" else None,
            "risk_free_rate": risk_free_rate,
            "start": dates[0],
            "end": dates[-1],
            "timing": "signal at close t sets the position held from close t to close t+1",
        }
    )
    return BacktestResult(
        returns=pd.Series(net, index=period_index, name="strategy"),
        positions=pd.Series(positions, index=dates, name="position"),
        equity=equity,
        benchmark_returns=pd.Series(bench_net, index=period_index, name="benchmark"),
        benchmark_equity=bench_equity,
        metrics=metrics,
        benchmark=benchmark,
        parameters=parameters,
    )
