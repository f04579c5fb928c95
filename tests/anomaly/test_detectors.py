"""The anomaly detectors (governance.detectors): hand-computed small cases, and simulated
streams where a shift must be found and a clean stream must stay quiet (seeded)."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import numpy as np
import pytest

from governance import detectors
from models_registry.checks.data_quality import population_stability_index

# Accuracy: Bernoulli CUSUM and Page-Hinkley ------------------------------------------------------


def test_bernoulli_cusum_adds_the_log_likelihood_ratio_and_restarts_at_zero():
    # p0 = 0.5, p1 = 0.25: a wrong answer adds ln(0.75/0.5), a right one ln(0.25/0.5).
    wrong, right = math.log(1.5), math.log(0.5)
    found = detectors.accuracy_drop([0, 1, 0, 0, 0], baseline=0.5, shift=0.25, threshold=1.0)
    # 0.405, max(0, 0.405 - 0.693) = 0, 0.405, 0.811, 1.216: fires at index 4.
    assert found.breached and found.at_index == 4
    assert found.statistic == pytest.approx(3 * wrong)
    assert found.detail["run_start"] == 2 and found.detail["run_accuracy"] == 0.0
    assert found.detail["accuracy"] == pytest.approx(0.2)
    assert right < 0 < wrong
    quiet = detectors.accuracy_drop([0, 1, 0, 1, 0, 1], baseline=0.5, shift=0.25, threshold=1.0)
    assert not quiet.breached and quiet.at_index is None
    assert quiet.statistic == pytest.approx(wrong)


def test_page_hinkley_accumulates_the_excess_of_wrong_answers_beyond_the_tolerance():
    # mu0 = 0.6, delta = 0.1: each wrong answer adds 0.5, each right one takes 0.5 away.
    found = detectors.accuracy_drop([0, 0, 1, 0, 0], baseline=0.6, shift=0.2, threshold=1.5, method="page_hinkley")
    assert found.breached and found.at_index == 4 and found.statistic == pytest.approx(1.5)
    assert found.detail["method"] == "page_hinkley"


def test_an_empty_series_is_no_alarm_and_says_why():
    found = detectors.accuracy_drop([], baseline=0.55, shift=0.1, threshold=5)
    assert not found.breached and math.isnan(found.statistic)
    assert found.as_dict()["statistic"] is None and "no predictions" in found.detail["reason"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": 1.2}, "baseline: must be in"),
        ({"shift": 0.6}, "shift: must be below the baseline"),
        ({"shift": -0.1}, "shift: must be a positive number"),
        ({"threshold": 0}, "threshold: must be a positive number"),
        ({"method": "ewma"}, "method: must be cusum or page_hinkley"),
    ],
)
def test_accuracy_drop_refuses_bad_parameters_naming_them(kwargs, message):
    arguments = {"baseline": 0.55, "shift": 0.1, "threshold": 5.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        detectors.accuracy_drop([1, 0, 1], **arguments)


def test_accuracy_drop_refuses_values_that_are_not_right_or_wrong():
    with pytest.raises(ValueError, match="correct: must hold booleans"):
        detectors.accuracy_drop([1, 0, 2], baseline=0.55, shift=0.1, threshold=5)
    with pytest.raises(ValueError, match="correct: holds NaN"):
        detectors.accuracy_drop([1, float("nan")], baseline=0.55, shift=0.1, threshold=5)


@pytest.mark.parametrize(("method", "threshold"), [("cusum", 5.0), ("page_hinkley", 15.0)])
def test_a_ten_point_drop_is_found_and_a_clean_stream_stays_quiet(method, threshold):
    rng = np.random.default_rng(20261123)
    baseline = 0.55
    # Clean: 1,000 predictions at the validation accuracy, 200 runs.
    false_alarms = sum(
        detectors.accuracy_drop(
            rng.random(1000) < baseline, baseline=baseline, shift=0.10, threshold=threshold, method=method
        ).breached
        for _ in range(200)
    )
    assert false_alarms <= 20  # at most 10% of 1,000-prediction runs (the measured rate is about 5%)
    # A drop of 10 points after 300 good predictions: found after the drop, within 700 more.
    delays = []
    for _ in range(200):
        stream = np.concatenate([rng.random(300) < baseline, rng.random(700) < baseline - 0.10])
        found = detectors.accuracy_drop(stream, baseline=baseline, shift=0.10, threshold=threshold, method=method)
        delays.append(found.at_index - 300 if found.breached and found.at_index >= 300 else None)
    assert sum(delay is not None for delay in delays) >= 190


# Losing trades -------------------------------------------------------------------------------------


def _brute_longest_run(n: int, length: int, p: float) -> float:
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=n):
        run = best = 0
        for value in outcome:
            run = run + 1 if value else 0
            best = max(best, run)
        if best >= length:
            total += p ** sum(outcome) * (1 - p) ** (n - sum(outcome))
    return total


def test_longest_run_probability_is_exact():
    assert detectors.longest_run_probability(3, 2, 0.5) == pytest.approx(3 / 8)  # HHT, THH, HHH
    assert detectors.longest_run_probability(4, 2, 0.5) == pytest.approx(1 - 8 / 16)  # 8 strings avoid HH
    assert detectors.longest_run_probability(5, 6, 0.5) == 0.0
    assert detectors.longest_run_probability(5, 0, 0.3) == 1.0
    for n, length, p in [(8, 3, 0.3), (10, 4, 0.55), (12, 2, 0.1), (9, 9, 0.7)]:
        assert detectors.longest_run_probability(n, length, p) == pytest.approx(_brute_longest_run(n, length, p))


def test_losing_trades_fires_when_a_streak_becomes_unlikely_under_the_baseline():
    # q = 0.5: a run of t losses in t trades has probability 0.5**t; below 0.1 at the 4th loss.
    found = detectors.losing_trades([-1, -1, -1, -1, 5], baseline_loss_rate=0.5, max_probability=0.1, window=4)
    assert found.breached and found.at_index == 3
    assert found.statistic == pytest.approx(0.0625 / 0.1) and found.threshold == 1.0  # relative to the limit
    assert found.detail["alarm"]["streak"] == 4 and found.detail["alarm"]["streak_probability"] == 0.0625


def test_the_streak_and_the_ratio_have_limits_of_their_own():
    # 6 losses in a row in 6 trades (q = 0.5): P_run = P_ratio = 1/64 = 0.0156.
    pnl = [-1] * 6
    strict = detectors.losing_trades(pnl, baseline_loss_rate=0.5, max_probability=0.001, window=6)
    assert not strict.breached and strict.statistic == pytest.approx((1 / 64) / 0.001)
    streaks = detectors.losing_trades(
        pnl, baseline_loss_rate=0.5, max_probability=0.001, max_streak_probability=0.02, window=6
    )
    assert streaks.breached and streaks.at_index == 5 and streaks.detail["alarm"]["cause"] == "streak"
    assert streaks.statistic == pytest.approx((1 / 64) / 0.02)
    with pytest.raises(ValueError, match="max_streak_probability: must be in"):
        detectors.losing_trades(pnl, baseline_loss_rate=0.5, max_probability=0.01, max_streak_probability=2, window=6)


def test_losing_trades_binomial_tail_of_the_losing_ratio():
    # 8 losses in 10 trades; P(X >= 8 | n=10, q=0.5) = 56/1024, the smallest tail of the series
    # (6 of 7 gives 8/128 = 0.0625); the longest streak, 3, is likely (P = 1 - 504/1024).
    pnl = [-1, -1, -1, 1, -1, -1, -1, 1, -1, -1]
    found = detectors.losing_trades(pnl, baseline_loss_rate=0.5, max_probability=0.01, window=10)
    assert found.detail["losing"] == 8 and found.detail["window_trades"] == 10
    assert found.detail["ratio_probability"] == pytest.approx(56 / 1024)
    assert found.detail["streak_probability"] == pytest.approx(1 - 504 / 1024)
    assert not found.breached  # 0.0547 is not below 0.01
    at_six = detectors.losing_trades(pnl, baseline_loss_rate=0.5, max_probability=0.06, window=10)
    assert at_six.breached and at_six.at_index == 9 and at_six.detail["alarm"]["cause"] == "ratio"


def test_a_zero_pnl_is_not_a_loss_and_decimals_are_accepted():
    found = detectors.losing_trades(
        [Decimal("0"), Decimal("0.00"), Decimal("-1.5")], baseline_loss_rate=0.5, max_probability=0.01, window=3
    )
    assert found.detail["losing"] == 1 and not found.breached


def test_losing_trades_on_simulated_streams():
    rng = np.random.default_rng(7)
    clean_alarms = sum(
        detectors.losing_trades(
            np.where(rng.random(500) < 0.45, -1.0, 1.0), baseline_loss_rate=0.45, max_probability=1e-4, window=100
        ).breached
        for _ in range(100)
    )
    assert clean_alarms <= 10
    found = 0
    for _ in range(100):
        pnl = np.where(np.concatenate([rng.random(200) < 0.45, rng.random(200) < 0.8]), -1.0, 1.0)
        detection = detectors.losing_trades(pnl, baseline_loss_rate=0.45, max_probability=1e-4, window=100)
        found += detection.breached and detection.at_index >= 200
    assert found >= 95


# Trade count ---------------------------------------------------------------------------------------


def test_trade_count_robust_z_against_the_trailing_median_and_mad():
    found = detectors.trade_count([10, 12, 11, 13, 10, 40], window=5, threshold=4.0)
    # median 11, MAD 1 -> 1.4826; the Poisson floor sqrt(11) = 3.3166 is larger.
    assert found.breached and found.at_index == 5
    assert found.detail["alarm"]["direction"] == "high"
    assert found.statistic == pytest.approx(29 / math.sqrt(11))
    low = detectors.trade_count([10, 12, 11, 13, 10, 0], window=5, threshold=3.0)
    assert low.breached and low.detail["alarm"]["direction"] == "low"
    assert low.statistic == pytest.approx(11 / math.sqrt(11))
    assert not detectors.trade_count([10, 12, 11, 13, 10, 0], window=5, threshold=4.0).breached


def test_an_earlier_spike_does_not_inflate_the_norm():
    # A mean and standard deviation of the window would be dragged up by the spike of 300
    # (mean 140.6, sd 89: z = 0.3) and miss the second spike; the median and MAD are not.
    counts = [100, 102, 98, 101, 99, 300, 101, 99, 100, 103, 170]
    found = detectors.trade_count(counts, window=5, threshold=6.0)
    assert found.at_index == 5
    later = detectors.trade_count(counts[5:], window=5, threshold=6.0)
    assert later.breached and later.at_index == 5
    assert later.detail["alarm"]["median"] == 101 and later.statistic == pytest.approx(69 / math.sqrt(101))


def test_trade_count_needs_more_days_than_its_window():
    found = detectors.trade_count([1, 2, 3], window=5, threshold=4.0)
    assert not found.breached and "needs more than 5 days" in found.detail["reason"]
    with pytest.raises(ValueError, match="daily_counts: counts cannot be negative"):
        detectors.trade_count([1, -2, 3, 4], window=3, threshold=4.0)


# Money ---------------------------------------------------------------------------------------------


def test_drawdown_peak_to_trough_against_the_capital_limit():
    found = detectors.drawdown([100, -50, 30, -120, 10], capital=Decimal("1000"), limit_fraction=0.1)
    # cumulative 100, 50, 80, -40, -30: the peak 100, the trough -40, a fall of 140.
    assert found.breached and found.at_index == 3
    assert Decimal(found.detail["max_drawdown"]) == 140
    assert (found.detail["peak_index"], found.detail["trough_index"]) == (0, 3)
    assert found.statistic == pytest.approx(0.14)


def test_drawdown_and_daily_loss_compare_exactly():
    at_limit = detectors.drawdown([Decimal("-100.00")], capital=Decimal("1000.00"), limit_fraction=0.1)
    assert not at_limit.breached
    beyond = detectors.drawdown([Decimal("-100.01")], capital=Decimal("1000.00"), limit_fraction=0.1)
    assert beyond.breached and beyond.at_index == 0
    losses = detectors.daily_loss(
        [Decimal("-499.99"), Decimal("-500.00"), Decimal("250"), Decimal("-500.01")], limit=Decimal("500.00")
    )
    assert losses.breached and losses.at_index == 3
    assert losses.detail["worst_loss"] == "500.01" and losses.detail["days_beyond"] == 1
    # A float is read through its repr: 0.1 + 0.2 is 0.30000000000000004, beyond 0.3.
    assert detectors.daily_loss([-(0.1 + 0.2)], limit=Decimal("0.3")).breached
    assert not detectors.daily_loss([Decimal("12.5")], limit=Decimal("1")).breached


def test_money_detectors_refuse_what_is_not_an_amount():
    with pytest.raises(ValueError, match=r"daily_pnl\[1\]: 'abc' is not a decimal amount"):
        detectors.daily_loss([1, "abc"], limit=Decimal("5"))
    with pytest.raises(ValueError, match="capital: must be positive"):
        detectors.drawdown([1], capital=Decimal("0"), limit_fraction=0.1)
    with pytest.raises(ValueError, match="limit: must be positive"):
        detectors.daily_loss([1], limit=Decimal("-5"))


# Feature drift -------------------------------------------------------------------------------------


def test_feature_drift_is_the_risk_checks_psi_per_feature():
    rng = np.random.default_rng(3)
    reference = {"ret": rng.normal(0, 1, 2000), "vol": rng.normal(0, 1, 2000)}
    current = {"ret": rng.normal(0, 1, 500), "vol": rng.normal(1.0, 1, 500), "new": rng.normal(0, 1, 500)}
    found = detectors.feature_drift(reference, current, threshold=0.25, bins=10)
    assert found.breached and found.detail["drifted"] == ["vol"] and found.at_index is None
    expected = population_stability_index(reference["vol"], current["vol"], n_bins=10)["psi"]
    assert found.detail["features"]["vol"]["psi"] == pytest.approx(expected)
    assert found.statistic == pytest.approx(expected)
    assert found.detail["features"]["ret"]["psi"] < 0.1
    assert found.detail["missing"] == ["new"]


def test_feature_drift_leaves_out_features_with_too_few_values():
    rng = np.random.default_rng(4)
    found = detectors.feature_drift(
        {"x": rng.normal(0, 1, 1000)}, {"x": rng.normal(3, 1, 50)}, threshold=0.25, bins=10, min_samples=100
    )
    assert not found.breached and found.detail["insufficient"] == ["x"] and found.as_dict()["statistic"] is None
