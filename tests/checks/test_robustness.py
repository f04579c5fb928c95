"""Volatility regimes and stress windows, by hand and on the real price files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models_registry.checks.backtest import run_backtest
from models_registry.checks.errors import InvalidParameter, NonMonotonicTimestamps
from models_registry.checks.robustness import (
    DEFAULT_STRESS_WINDOWS,
    StressWindow,
    backtest_robustness,
    classification_by_regime,
    metrics_by_volatility_regime,
    stress_windows,
    volatility_regimes,
)
from tests.checks.conftest import assert_json_safe


def test_regimes_are_terciles_of_the_volatility_known_the_day_before(random_walk):
    regimes, edges = volatility_regimes(random_walk, window=20)
    returns = random_walk.pct_change().iloc[1:].to_numpy()
    # The period ending at position i (of the returns) uses returns i-20 .. i-1.
    sigma = np.array([np.std(returns[i - 20 : i], ddof=1) if i >= 20 else np.nan for i in range(len(returns))])
    q1, q2 = np.nanquantile(sigma, [1 / 3, 2 / 3])
    assert edges == pytest.approx([q1, q2])
    expected = np.where(np.isnan(sigma), None, np.where(sigma <= q1, "low", np.where(sigma <= q2, "medium", "high")))
    assert regimes.tolist() == expected.tolist()
    counts = regimes.value_counts()
    assert abs(counts["low"] - counts["high"]) <= 2  # terciles


def test_metrics_by_regime_split_the_periods(random_walk):
    result = run_backtest(random_walk, pd.Series(1.0, index=random_walk.index))
    out = metrics_by_volatility_regime(result.returns, random_walk)
    assert sum(out["regimes"][r]["n_periods"] for r in ("low", "medium", "high")) + out["unclassified_periods"] == len(
        result.returns
    )
    regimes, _ = volatility_regimes(random_walk)
    high = result.returns[(regimes.reindex(result.returns.index) == "high").to_numpy()]
    assert out["regimes"]["high"]["strategy"]["total_return"] == pytest.approx(float(np.prod(1 + high) - 1))
    assert_json_safe(out)


def test_classification_by_regime(random_walk):
    regimes, _ = volatility_regimes(random_walk)
    y = pd.Series((random_walk.pct_change().shift(-1) > 0).astype(int).to_numpy()[1:], index=regimes.index)
    out = classification_by_regime(regimes, y, pd.Series(1, index=y.index))
    for regime in ("low", "medium", "high"):
        mask = regimes == regime
        assert out[regime]["accuracy"] == pytest.approx(float(y[mask].mean()))


def test_stress_windows_on_real_prices(nvda_close):
    result = run_backtest(nvda_close, pd.Series(1.0, index=nvda_close.index))
    out = stress_windows(pd.DataFrame({"strategy": result.returns, "benchmark": result.benchmark_returns}))
    assert set(out) == {"dotcom", "gfc", "covid"}
    dotcom = out["dotcom"]
    assert dotcom["covered"] is True
    # From the close of 2000-03-10 to the close of 2002-10-09: buy and hold's return is the price ratio.
    expected = nvda_close.loc["2002-10-09"] / nvda_close.loc["2000-03-10"] - 1
    assert dotcom["benchmark"]["total_return"] == pytest.approx(expected, rel=1e-12)
    assert dotcom["benchmark"]["max_drawdown"] > 0.5
    assert out["gfc"]["covered"] is True
    assert out["covid"]["covered"] is False
    assert "1999-01-25 to 2014-12-31" in out["covid"]["reason"]
    assert_json_safe(out)


def test_stress_windows_are_a_parameter(orcl_close):
    result = run_backtest(orcl_close, pd.Series(1.0, index=orcl_close.index))
    window = StressWindow("asia", "1997-07-02", "1998-10-08", "Asian and LTCM crises")
    out = stress_windows(result.returns, windows=[window])
    assert list(out) == ["asia"] and out["asia"]["covered"] is True
    with pytest.raises(InvalidParameter):
        stress_windows(result.returns, windows=[StressWindow("bad", "2001-01-02", "2000-01-03")])


def test_backtest_robustness_combines_both(orcl_close):
    result = run_backtest(orcl_close, np.sign(orcl_close.pct_change().rolling(20).mean()).fillna(0.0))
    out = backtest_robustness(result, orcl_close, windows=DEFAULT_STRESS_WINDOWS)
    assert out["stress_windows"]["dotcom"]["covered"] and out["stress_windows"]["gfc"]["covered"]
    assert set(out["volatility_regimes"]["regimes"]["low"]) >= {"strategy", "benchmark", "n_periods"}
    assert_json_safe(out)


def test_non_monotonic_dates_are_refused(random_walk):
    with pytest.raises(NonMonotonicTimestamps):
        volatility_regimes(random_walk.iloc[::-1])
