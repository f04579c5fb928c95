"""Backtest: timing (no look-ahead), costs, metrics against hand-built series, real prices, bad input."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from models_registry.checks.backtest import return_metrics, run_backtest, signals_from_probabilities
from models_registry.checks.errors import (
    InvalidParameter,
    InvalidValues,
    NaNAboveTolerance,
    NonMonotonicTimestamps,
    TestSetTooSmall,
)
from tests.checks.conftest import assert_json_safe


def series(values, start="2020-01-06"):
    return pd.Series(np.asarray(values, dtype=float), index=pd.bdate_range(start, periods=len(values)))


def test_signal_at_t_earns_the_return_from_t_to_t_plus_1(random_walk):
    asset = random_walk.pct_change()
    foresight = np.sign(asset.shift(-1)).fillna(0.0)  # sign(r_{t+1}) dated t: uses the future
    known = np.sign(asset).fillna(0.0)  # sign(r_t) dated t: what is known at the close of t
    perfect = run_backtest(random_walk, foresight)
    # Dated t, the foresight signal collects every move: the engine applies s_t to r_{t+1}.
    assert np.allclose(perfect.returns.to_numpy(), np.abs(asset.iloc[1:].to_numpy()), atol=1e-15)
    assert perfect.metrics["hit_rate"] == 1.0
    honest = run_backtest(random_walk, known)
    expected = (known.shift(1) * asset).iloc[1:]
    assert np.allclose(honest.returns.to_numpy(), expected.to_numpy(), atol=1e-15)
    assert 0.4 < honest.metrics["hit_rate"] < 0.6  # a random walk: no edge without the future


def test_a_signal_never_changes_its_own_or_earlier_periods(random_walk):
    rng = np.random.default_rng(1)
    signals = pd.Series(rng.choice([-1.0, 0.0, 1.0], len(random_walk)), index=random_walk.index)
    base = run_backtest(random_walk, signals).returns
    k = 250
    changed = signals.copy()
    changed.iloc[k] = -signals.iloc[k] if signals.iloc[k] else 1.0
    moved = run_backtest(random_walk, changed).returns
    differs = moved.index[(moved != base).to_numpy()]
    assert list(differs) == [random_walk.index[k + 1]]  # only the period from t to t+1
    last = signals.copy()
    last.iloc[-1] = -1.0 if signals.iloc[-1] != -1.0 else 1.0
    assert run_backtest(random_walk, last).returns.equals(base)  # the last signal is never used


def test_costs_and_slippage_cost_exactly_their_bps_on_a_known_trade_sequence(random_walk):
    prices = random_walk.iloc[:9]
    positions = series([1, 1, 0, -1, -1, 0.5, 0.5, 1, 1], "2010-01-04")
    positions.index = prices.index
    free = run_backtest(prices, positions, min_periods=2)
    costly = run_backtest(prices, positions, cost_bps=10, slippage_bps=5, min_periods=2)
    turnover = np.array([1, 0, 1, 1, 0, 1.5, 0, 0.5])  # |w_t - w_{t-1}| for t = 0..7, w_{-1} = 0
    assert np.allclose(free.returns.to_numpy() - costly.returns.to_numpy(), turnover * 0.0015, atol=1e-16)
    assert costly.metrics["total_turnover"] == pytest.approx(5.0)
    assert costly.metrics["n_trades"] == 5
    assert costly.metrics["costs"] == pytest.approx(5.0 * 0.0015)
    assert costly.metrics["turnover"] == pytest.approx(5.0 / (8 / 252))


def test_flat_prices_lose_exactly_the_costs():
    prices = series([100.0] * 6)
    positions = series([1, 0, -1, -1, 1, 1])
    result = run_backtest(prices, positions, cost_bps=3, slippage_bps=1, min_periods=2)
    assert result.returns.tolist() == pytest.approx([-0.0004, -0.0004, -0.0004, 0.0, -0.0008])


def test_sharpe_sortino_and_annualisation_against_a_hand_computation():
    returns = [0.01, -0.02, 0.015, 0.003, -0.004, 0.012, 0.0, 0.007, -0.011, 0.02]
    prices = series(np.concatenate([[100.0], 100.0 * np.cumprod(1 + np.array(returns))]))
    result = run_backtest(prices, series([1.0] * len(prices)), min_periods=2)
    m = result.metrics
    mean, stdev = statistics.mean(returns), statistics.stdev(returns)
    assert m["sharpe_ratio"] == pytest.approx(mean / stdev * math.sqrt(252), rel=1e-12)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    assert m["sortino_ratio"] == pytest.approx(mean / downside * math.sqrt(252), rel=1e-12)
    total = math.prod(1 + r for r in returns) - 1
    assert m["total_return"] == pytest.approx(total, rel=1e-12)
    assert m["annualised_return"] == pytest.approx((1 + total) ** (252 / 10) - 1, rel=1e-12)
    assert m["annualised_volatility"] == pytest.approx(stdev * math.sqrt(252), rel=1e-12)
    assert m["hit_rate"] == pytest.approx(6 / 10)
    assert m["n_trades"] == 1 and m["exposure"] == 1.0
    # Always long: the strategy is the buy-and-hold benchmark.
    assert result.benchmark["sharpe_ratio"] == pytest.approx(m["sharpe_ratio"])
    assert_json_safe(result.to_dict())


def test_sharpe_with_a_risk_free_rate():
    r = np.array([0.01, 0.0, 0.02, -0.01])
    m = return_metrics(r, periods_per_year=12, risk_free_rate=0.06)
    assert m["sharpe_ratio"] == pytest.approx((r.mean() - 0.005) / r.std(ddof=1) * math.sqrt(12))


def test_known_drawdown_depth_dates_and_duration():
    prices = series([100, 110, 99, 88, 110, 121])  # peak 110, trough 88, back to 110
    result = run_backtest(prices, series([1.0] * 6), min_periods=2)
    m = result.metrics
    assert m["max_drawdown"] == pytest.approx(0.2)
    assert m["max_drawdown_peak"] == "2020-01-07"
    assert m["max_drawdown_trough"] == "2020-01-09"
    assert m["max_drawdown_recovery"] == "2020-01-10"
    assert m["max_drawdown_duration"] == 3
    assert m["max_drawdown_duration_days"] == 3
    annual = (1.21 ** (252 / 5)) - 1
    assert m["calmar_ratio"] == pytest.approx(annual / 0.2)


def test_longest_drawdown_differs_from_the_deepest_and_may_not_recover():
    prices = series([100, 120, 60, 120, 119, 118, 117, 116, 115])
    m = run_backtest(prices, series([1.0] * 9), min_periods=2).metrics
    assert m["max_drawdown"] == pytest.approx(0.5)
    assert m["max_drawdown_duration"] == 2  # peak 120 (t=1) to recovery (t=3)
    assert m["longest_drawdown_duration"] == 5  # peak 120 (t=3), still under water at t=8
    prices = series([100, 120, 90, 80, 100])
    m = run_backtest(prices, series([1.0] * 5), min_periods=2).metrics
    assert m["max_drawdown_recovery"] is None
    assert m["undefined"]["max_drawdown_recovery"] == "not recovered by the end of the data"
    assert m["max_drawdown_duration"] == 3


def test_no_drawdown_and_no_downside():
    m = run_backtest(series([100, 101, 102, 103]), series([1.0] * 4), min_periods=2).metrics
    assert m["max_drawdown"] == 0.0 and m["max_drawdown_duration"] == 0
    assert m["calmar_ratio"] is None and m["sortino_ratio"] is None
    assert set(m["undefined"]) >= {"calmar_ratio", "sortino_ratio"}
    assert m["max_drawdown_peak"] is None and m["undefined"]["max_drawdown_peak"] == "no drawdown"
    assert all(key in m["undefined"] for key, value in m.items() if value is None)  # every None explained
    assert_json_safe(m)


def test_probabilities_are_mapped_by_the_documented_rule():
    p = series([0.7, 0.3, 0.5, np.nan, 0.51])
    assert signals_from_probabilities(p).tolist()[:3] == [1.0, -1.0, 0.0]
    assert np.isnan(signals_from_probabilities(p).iloc[3])
    assert signals_from_probabilities(p, long_only=True).tolist()[:3] == [1.0, 0.0, 0.0]
    assert signals_from_probabilities(p, threshold=0.55).iloc[4] == -1.0
    prices = series([100, 101, 100, 102, 103])
    result = run_backtest(prices, p, signal_type="probability", nan_tolerance=0.2, min_periods=2)
    assert result.positions.tolist() == [1.0, -1.0, 0.0, 0.0, 1.0]
    assert result.metrics["missing_signals"] == 1


def test_sign_and_volatility_target_sizing(random_walk):
    signals = pd.Series(0.5, index=random_walk.index)
    assert (run_backtest(random_walk, signals, sizing="sign").positions == 1.0).all()
    result = run_backtest(
        random_walk, signals, sizing="vol_target", target_volatility=0.1, vol_window=20, max_leverage=2.0
    )
    r = random_walk.to_numpy()
    asset = r[1:] / r[:-1] - 1
    t = 100  # the window of returns ending at t: r_{t-19..t}, i.e. asset[t-20 : t]
    sigma = statistics.stdev(asset[t - 20 : t]) * math.sqrt(252)
    assert result.positions.iloc[t] == pytest.approx(0.5 * min(2.0, 0.1 / sigma))
    assert (result.positions.iloc[:20] == 0).all()  # flat until the window is full


def test_buy_and_hold_benchmark_on_real_prices(nvda_close):
    start = nvda_close.index[-20 * 252 :] if len(nvda_close) > 20 * 252 else nvda_close.index
    prices = nvda_close.loc[start]
    trend = np.sign(prices.pct_change().rolling(50).mean()).fillna(0.0)
    result = run_backtest(prices, trend, cost_bps=5, slippage_bps=5)
    bench = result.benchmark
    # One entry at the first close; its 10 bps come off the first period's return.
    r1 = prices.iloc[1] / prices.iloc[0] - 1
    expected = (1 + r1 - 0.001) / (1 + r1) * prices.iloc[-1] / prices.iloc[0] - 1
    assert bench["total_return"] == pytest.approx(expected, rel=1e-12)
    assert bench["n_trades"] == 1
    assert 0 < result.metrics["max_drawdown"] < 1 and 0 < bench["max_drawdown"] < 1
    assert result.metrics["excess_total_return"] == pytest.approx(
        result.metrics["total_return"] - bench["total_return"]
    )
    payload = result.to_dict()
    assert len(payload["equity_curve"]["dates"]) == len(prices) == len(payload["equity_curve"]["benchmark"])
    assert_json_safe(payload)
    for name in ("total_return", "sharpe_ratio", "max_drawdown"):  # what the policies read
        assert isinstance(result.metrics[name], float)


def test_bad_input_is_refused_naming_the_cause():
    prices = series([100, 101, 102, 103, 104])
    signals = series([1.0] * 5)
    shuffled = prices.iloc[[0, 1, 3, 2, 4]]
    with pytest.raises(NonMonotonicTimestamps) as exc:
        run_backtest(shuffled, signals, min_periods=2)
    assert exc.value.detail["position"] == 3 and "2020-01-08" in str(exc.value)
    with pytest.raises(TestSetTooSmall, match="the price series has 5 rows; at least 21 are needed"):
        run_backtest(prices, signals)
    with pytest.raises(TestSetTooSmall):
        run_backtest(prices.iloc[:0], signals.iloc[:0])
    gappy = signals.copy()
    gappy.iloc[1:3] = np.nan
    with pytest.raises(NaNAboveTolerance, match=r"signal \(40.00%\)"):
        run_backtest(prices, gappy, nan_tolerance=0.2, min_periods=2)
    with pytest.raises(InvalidValues, match="between -1 and 1"):
        run_backtest(prices, signals * 2, min_periods=2)
    with pytest.raises(InvalidValues, match="positive and finite; position 2"):
        run_backtest(series([100, 101, -1, 103, 104]), signals, min_periods=2)
    with pytest.raises(NaNAboveTolerance):
        run_backtest(series([100, np.nan, 102, 103, 104]), signals, min_periods=2)
    with pytest.raises(InvalidParameter, match="non-negative"):
        run_backtest(prices, signals, cost_bps=-1, min_periods=2)
    with pytest.raises(InvalidParameter, match="unknown sizing"):
        run_backtest(prices, signals, sizing="kelly", min_periods=2)  # type: ignore[arg-type]
    with pytest.raises(InvalidValues, match="DatetimeIndex"):
        run_backtest(prices.reset_index(drop=True), signals, min_periods=2)
