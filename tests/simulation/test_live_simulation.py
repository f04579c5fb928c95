"""The live simulation's generator: a seeded bootstrap of real rows, injections that do what
they say, timestamps the ingest accepts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from governance import live_simulation as ls
from governance.demo import market


def _days(pool, **kwargs):
    kwargs.setdefault("days", 5)
    kwargs.setdefault("decisions_per_day", 50)
    kwargs.setdefault("window_days", 60)  # the fixture's pool holds two real years
    return list(ls.replay(pool, **kwargs))


def test_the_same_seed_gives_the_same_days_and_another_seed_other_ones(real_pool):
    first = _days(real_pool, seed=7, injections=[ls.parse_injection("accuracy_drop@3")])
    again = _days(real_pool, seed=7, injections=[ls.parse_injection("accuracy_drop@3")])
    other = _days(real_pool, seed=8, injections=[ls.parse_injection("accuracy_drop@3")])
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.predicted, b.predicted)
    assert not all(np.array_equal(a.rows, c.rows) for a, c in zip(first, other, strict=True))


def test_an_injection_changes_only_the_injected_decisions_of_the_same_draws(real_pool):
    clean = _days(real_pool, seed=3)
    injected = _days(real_pool, seed=3, injections=[ls.parse_injection("accuracy_drop@2:0.2")])
    assert np.array_equal(clean[0].predicted, injected[0].predicted) and not injected[0].injected.any()
    for c, i in zip(clean[1:], injected[1:], strict=True):
        assert np.array_equal(c.rows, i.rows)
        changed = c.predicted != i.predicted
        assert np.array_equal(changed, i.injected)
        # Only correct decisions are flipped, and a flipped one is wrong.
        assert c.correct[changed].all() and not i.correct[changed].any()


def test_every_draw_is_a_real_row_with_its_real_label_and_return(real_pool, real_frames):
    for draw in _days(real_pool, days=3, decisions_per_day=100, seed=11):
        for row, outcome, next_return in zip(draw.rows, draw.outcome, draw.next_return, strict=True):
            frame = real_frames[real_pool.instrument[row]]
            real = frame.loc[frame["Date"] == real_pool.date[row]].iloc[0]
            assert outcome == real["next_up"]
            assert next_return == pytest.approx(np.expm1(real["next_return"]))


def test_draws_come_from_the_trailing_window_of_the_replayed_date(real_pool):
    dates = real_pool.dates
    for draw in _days(real_pool, days=4, window_days=20, seed=5):
        drawn = real_pool.date[draw.rows]
        assert drawn.max() <= draw.real_date
        assert drawn.min() >= dates[np.searchsorted(dates, draw.real_date) - 19]
    first = _days(real_pool, days=2, window_days=20)
    assert first[0].real_date == dates[19] and first[1].real_date == dates[20]


def test_the_predictions_are_the_models_own_on_the_real_features(real_pool):
    draw = _days(real_pool, days=1, seed=2)[0]
    assert np.array_equal(draw.predicted, real_pool.predicted[draw.rows])
    assert np.array_equal(draw.probability, real_pool.probability[draw.rows])
    assert np.array_equal(draw.predicted, (draw.probability > 0.5).astype(int))


def test_an_accuracy_drop_lowers_the_accuracy_by_about_its_size(real_pool):
    kwargs = {"days": 30, "decisions_per_day": 400, "seed": 1}
    clean = _days(real_pool, **kwargs)
    dropped = _days(real_pool, injections=[ls.parse_injection("accuracy_drop@1:0.10")], **kwargs)
    before = np.mean([d.accuracy for d in clean])
    after = np.mean([d.accuracy for d in dropped])
    # 12,000 decisions: the standard error of the difference is well under a point.
    assert before - after == pytest.approx(0.10, abs=0.015)
    expected = np.mean([d.window_accuracy for d in clean])
    assert before == pytest.approx(expected, abs=0.015)


def test_an_accuracy_drop_starts_on_its_day(real_pool):
    days = _days(real_pool, days=6, decisions_per_day=200, seed=4, injections=[ls.parse_injection("accuracy_drop@4")])
    assert [bool(d.injected.any()) for d in days] == [False, False, False, True, True, True]
    assert [d.injections for d in days][3:] == [("accuracy_drop@4:0.1",)] * 3


def test_a_losing_streak_appears_on_its_day(real_pool):
    days = _days(real_pool, days=4, decisions_per_day=100, seed=9, injections=[ls.parse_injection("losing_streak@3")])
    assert [bool(d.injected.any()) for d in days] == [False, False, True, False]
    streak = days[2]
    losing = streak.trade_return < 0
    run, longest = 0, 0
    for lost in losing:
        run = run + 1 if lost else 0
        longest = max(longest, run)
    assert longest >= 15
    assert losing[streak.injected].all() and streak.injected.sum() == 15
    # The streak's rows are real rows too, and their outcome is the real label.
    assert np.array_equal(streak.outcome, real_pool.outcome[streak.rows])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accuracy_drop", "expected accuracy_drop@DAY"),
        ("spike@3", "unknown injection 'spike'"),
        ("accuracy_drop@x", "DAY must be a whole number"),
        ("accuracy_drop@0", "day 0 is out of range"),
        ("accuracy_drop@11", r"day 11 is out of range \(1..10\)"),
        ("accuracy_drop@2:1.5", r"SIZE is the accuracy lost as a fraction, in \(0, 1\)"),
        ("accuracy_drop@2:abc", "SIZE must be a number"),
        ("losing_streak@2:0", "LENGTH must be at least 1"),
        ("losing_streak@2:2.5", "LENGTH must be a whole number"),
    ],
)
def test_bad_injections_are_refused_with_the_reason(text, message):
    with pytest.raises(ls.SimulationError, match=message):
        ls.parse_injection(text, days=10)


def test_injections_parse_with_their_defaults():
    assert ls.parse_injection("accuracy_drop@20") == ls.Injection("accuracy_drop", 20, 0.10)
    assert ls.parse_injection("accuracy_drop@20:0.05") == ls.Injection("accuracy_drop", 20, 0.05)
    assert ls.parse_injection("losing_streak@3") == ls.Injection("losing_streak", 3, 15.0)
    assert ls.parse_injection("losing_streak@3:8") == ls.Injection("losing_streak", 3, 8.0)


def test_replays_that_do_not_fit_are_refused(real_pool):
    with pytest.raises(ls.SimulationError, match="the datasets hold"):
        _days(real_pool, days=len(real_pool.dates))
    with pytest.raises(ls.SimulationError, match="does not fit in 10 decisions"):
        _days(real_pool, decisions_per_day=10, injections=[ls.parse_injection("losing_streak@1")])
    with pytest.raises(ls.SimulationError, match=r"cannot lose 0\.9"):
        _days(real_pool, injections=[ls.parse_injection("accuracy_drop@1:0.9")])
    with pytest.raises(ls.SimulationError, match="--days must be at least 1"):
        _days(real_pool, days=0)


NOW = dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)  # a Monday, before the close


def test_with_nothing_stored_the_days_end_on_the_last_closed_business_day():
    days = ls.business_days(days=3, after=None, now=NOW)
    assert days == [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
    after_close = NOW.replace(hour=21, minute=30)
    assert ls.business_days(days=1, after=None, now=after_close) == [dt.date(2026, 11, 23)]


def test_the_days_start_after_the_last_stored_sample_and_never_reach_the_future():
    last = dt.datetime(2026, 11, 12, 21, 0, tzinfo=dt.UTC)  # a Thursday
    assert ls.business_days(days=3, after=last, now=NOW) == [
        dt.date(2026, 11, 13),
        dt.date(2026, 11, 16),
        dt.date(2026, 11, 17),
    ]
    with pytest.raises(ls.SimulationError, match="at most 6 days fit"):
        ls.business_days(days=7, after=last, now=NOW)
    # A last sample on a Friday or during the weekend: the next day is Monday.
    for day in (20, 21, 22):
        after = dt.datetime(2026, 11, day, 22, 0, tzinfo=dt.UTC)
        assert ls.business_days(days=1, after=after, now=NOW.replace(hour=22)) == [dt.date(2026, 11, 23)]
    with pytest.raises(ls.SimulationError, match="at most 0 days fit"):
        ls.business_days(days=1, after=dt.datetime(2026, 11, 20, 22, 0, tzinfo=dt.UTC), now=NOW)


def test_samples_have_valid_increasing_timestamps_within_their_day_and_decimal_pnl(real_pool):
    draw = _days(real_pool, days=1, decisions_per_day=200, seed=1)[0]
    day = dt.date(2026, 11, 20)
    notional = ls.notional_per_decision(Decimal("5000000.00"), 200)
    samples = ls.day_samples(real_pool, draw, day=day, notional=notional)
    times = [s["at"] for s in samples]
    assert all(t.tzinfo is dt.UTC and t.date() == day for t in times)
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[-1] == dt.datetime(2026, 11, 20, 21, 0, tzinfo=dt.UTC)
    assert notional == Decimal("25000.00")
    for sample, trade_return in zip(samples, draw.trade_return, strict=True):
        assert isinstance(sample["pnl"], Decimal) and sample["pnl"] == sample["pnl"].quantize(Decimal("0.01"))
        assert float(sample["pnl"]) == pytest.approx(25000 * trade_return, abs=0.01)
        assert sample["pnl_kind"] == "trade" and sample["trade_count"] == 1
        assert set(sample["features"]) == set(real_pool.feature_names)
        assert sample["instrument"] in {"NVDA", "ORCL"}
    # A day's decisions together stay within the capital limit.
    assert notional * 200 <= Decimal("5000000.00")


def test_only_classifiers_of_a_0_1_target_are_replayed(real_frames):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    built = real_frames["NVDA"].iloc[:300]
    X = built[market.FEATURES]
    regressor = LinearRegression().fit(X, built["next_return"])
    with pytest.raises(
        ls.SimulationError, match="replays classifiers of a 0/1 direction; the artifact is a LinearRegression"
    ):
        ls.predictions(regressor, X)
    three = LogisticRegression(max_iter=500).fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ls.SimulationError, match=r"the model's classes are \[0, 1, 2\], not 0 and 1"):
        ls.predictions(three, X)
