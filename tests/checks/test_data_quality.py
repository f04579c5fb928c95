"""Data quality (reusing the dataset rules) and drift by PSI and KS."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models_registry.checks.data_quality import (
    data_quality_report,
    drift,
    population_stability_index,
    robust_z_scores,
    stale_runs,
)
from models_registry.checks.errors import FeatureMismatch, InvalidParameter, InvalidValues, TestSetTooSmall
from tests.checks.conftest import MARKET, assert_json_safe


@pytest.fixture
def prices() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2021-01-04", periods=60)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    return pd.DataFrame(
        {"Date": dates.strftime("%Y-%m-%d"), "Close": close, "Volume": rng.integers(1000, 2000, 60).astype(float)}
    )


def test_a_clean_frame_passes(prices):
    report = data_quality_report(prices, time_column="Date", price_columns=["Close"], max_gap_days=5)
    assert report["passed"] is True, report
    assert_json_safe(report)


def test_each_problem_is_detected(prices):
    frame = prices.copy()
    frame.loc[3, "Volume"] = np.nan  # missing value
    frame.loc[10, "Close"] = frame.loc[9, "Close"] * 1.8  # a jump: outlier in returns
    frame.loc[20:25, "Close"] = frame.loc[20, "Close"]  # six identical closes: stale
    frame.loc[40, "Date"] = "2021-01-01"  # goes back in time (to a date not otherwise present)
    frame.loc[50:, "Date"] = pd.bdate_range("2021-04-01", periods=10).strftime("%Y-%m-%d")  # a gap
    frame = pd.concat([frame, frame.iloc[[59]]], ignore_index=True)  # duplicated row
    report = data_quality_report(frame, time_column="Date", price_columns=["Close"], max_gap_days=5, stale_run=5)
    assert report["passed"] is False
    volume = next(m for m in report["missing_values"] if m["column"] == "Volume")
    assert volume["missing"] == 1 and volume["passed"] is False
    close = next(o for o in report["outliers"]["columns"] if o["column"] == "Close")
    assert close["tested_on"] == "returns" and 10 in close["example_rows"]
    assert report["stale_prices"]["runs"]["Close"] == [{"first_row": 20, "length": 6, "value": frame.loc[20, "Close"]}]
    assert report["duplicates"] == {"rows": 1, "timestamps": 1}
    checks = {c["rule"]: c for c in report["timestamps"]}
    assert checks["monotonic_timestamps"]["passed"] is False and 40 in checks["monotonic_timestamps"]["example_rows"]
    assert checks["max_gap_days"]["passed"] is False
    assert_json_safe(report)


def test_declared_rules_are_evaluated_by_the_dataset_module(prices):
    rules = {"required_columns": ["Date", "Close", "Open"], "ranges": {"Close": {"min": 0, "max": 101}}}
    report = data_quality_report(prices, rules=rules, time_column="Date", nan_tolerance={"Volume": 0.1})
    failing = {(c["rule"], c["column"]) for c in report["declared_rules"]["checks"] if not c["passed"]}
    assert ("required_columns", "Open") in failing and ("ranges", "Close") in failing
    assert report["passed"] is False


def test_real_price_file_quality():
    frame = pd.read_csv(next(MARKET.glob("nvda-*.csv")))
    report = data_quality_report(frame, time_column="Date", price_columns=["Close", "Adj Close"], max_gap_days=5)
    assert report["duplicates"] == {"rows": 0, "timestamps": 0}
    assert all(m["passed"] for m in report["missing_values"])
    assert report["declared_rules"]["checks"][1]["rule"] == "monotonic_timestamps"
    assert_json_safe(report)


def test_robust_z_and_stale_runs_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, |x - 3| = 2, 1, 0, 1, 97 → MAD 1
    assert robust_z_scores(x).tolist() == pytest.approx([0.6745 * v for v in (-2, -1, 0, 1, 97)])
    # MAD = 0: the mean absolute deviation is used instead (median 5; deviations 0,0,0,0,10 → mean 2).
    assert robust_z_scores(np.array([5.0, 5, 5, 5, 15]))[4] == pytest.approx(10 / (1.253314 * 2))
    runs = stale_runs(pd.Series([1.0, 1, 1, 2, 2, 3, 3, 3, 3]), 3)
    assert runs == [{"first_row": 0, "length": 3, "value": 1.0}, {"first_row": 5, "length": 4, "value": 3.0}]


def test_data_quality_bad_input(prices):
    with pytest.raises(FeatureMismatch, match="Open"):
        data_quality_report(prices, time_column="Date", price_columns=["Open"])
    with pytest.raises(InvalidParameter, match="the dataset rules are invalid: not_nul: unknown rule"):
        data_quality_report(prices, rules={"not_nul": ["Close"]}, time_column="Date")


# --- drift ------------------------------------------------------------------------------------------


def test_psi_by_hand():
    reference = np.arange(100, dtype=float)  # quartile edges 24.75, 49.5, 74.25
    current = np.array([0.0, 5, 10, 20, 30, 40, 60, 99])  # shares 4/8, 2/8, 1/8, 1/8
    result = population_stability_index(reference, current, n_bins=4)
    assert result["edges"] == pytest.approx([24.75, 49.5, 74.25])
    p, q = [0.25] * 4, [0.5, 0.25, 0.125, 0.125]
    assert result["psi"] == pytest.approx(sum((b - a) * math.log(b / a) for a, b in zip(p, q, strict=True)))
    empty = population_stability_index(reference, np.array([1.0, 2.0]), n_bins=4, epsilon=1e-4)
    expected = (1 - 0.25) * math.log(1 / 0.25) + 3 * (1e-4 - 0.25) * math.log(1e-4 / 0.25)
    assert empty["psi"] == pytest.approx(expected)
    assert population_stability_index(reference, reference)["psi"] == 0.0


def test_drift_per_feature_with_ks_against_a_hand_computation():
    rng = np.random.default_rng(9)
    train = pd.DataFrame({"same": rng.normal(0, 1, 2000), "shifted": rng.normal(0, 1, 2000)})
    test = pd.DataFrame({"same": rng.normal(0, 1, 1000), "shifted": rng.normal(0.8, 1, 1000)})
    test.loc[:9, "same"] = np.nan
    result = drift(train, test, ["same", "shifted"])
    same, shifted = result["features"]
    assert result["drifted_features"] == ["shifted"]
    assert same["psi_level"] == "stable" and shifted["psi_level"] == "significant"
    assert same["missing_current"] == 10 and same["n_current"] == 990
    x, y = np.sort(train["shifted"].to_numpy()), np.sort(test["shifted"].to_numpy())
    grid = np.concatenate([x, y])
    ks = np.max(
        np.abs(np.searchsorted(x, grid, side="right") / len(x) - np.searchsorted(y, grid, side="right") / len(y))
    )
    assert shifted["ks_statistic"] == pytest.approx(ks)
    assert shifted["ks_significant"] is True and shifted["ks_pvalue"] < 1e-10
    assert_json_safe(result)


def test_drift_bad_input():
    train = pd.DataFrame({"a": np.arange(50.0), "b": ["x"] * 50})
    with pytest.raises(FeatureMismatch, match="missing from the dataset: c"):
        drift(train, train, ["a", "c"])
    with pytest.raises(InvalidValues, match="'b' of the training data is not numeric"):
        drift(train, train, ["b"])
    with pytest.raises(TestSetTooSmall, match="feature 'a' of the test data has 5 rows"):
        drift(train, train.iloc[:5], ["a"])
