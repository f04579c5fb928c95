"""Detection quality of the accuracy-drop rule (issue 8): an injected 10-point drop detected
within 5 trading days in >= 95% of 200 runs; false alarms on <= 1% of clean days.

    .venv/bin/python benchmarks/monitoring_detection.py [--runs 200] [--days 60] [--json FILE]

No database. The data is a bootstrap of the real series, not invented data: the demo's
direction model (``nvda-direction-logistic``, trained as the demo trains it on NVDA 1999-2008
with the daily_prices_v1 features) is applied once to the real rows of NVDA and ORCL
(governance/demo/data/market); each run then replays real trading days of the out-of-sample
test period (2012-2014) through ``governance.live_simulation.replay`` (K decisions a day drawn
with a seeded RNG from the trailing window of real days, both instruments, each with its real
outcome), exactly what ``manage.py simulate_live`` feeds the monitor.

The detector is ``governance.detectors.accuracy_drop`` with the shipped defaults
(``monitoring`` in governance/policies/parameters.yaml, or --shift/--threshold/--method) and
the baseline a validation would measure: the model's real accuracy on the validation period
(2009-2011), both instruments. As on ingest, it is evaluated at the end of every day on the
decisions since it last fired (it restarts the day after an alarm).

* Drift runs: an ``accuracy_drop@D:0.10`` injection with D uniform in 20..40; detected when the
  first alarm on or after day D is on a day D..D+4 (5 trading days of degraded data). Alarms
  before D are counted as false alarms of those clean days.
* Clean runs: the same runs (same seeds, so the same draws) without the injection. The false
  alarm rate is (days on which an alarm fires) / (days monitored), days over all clean runs.

Also prints the statistics behind K (decisions per day): the power of the best fixed test on
one real decision per instrument per day, and the K a 5-day window needs; and, on the first
--losing-runs clean runs, the losing-trades rule with its shipped defaults: the share of clean
days on which it fires and whether a default losing streak injected on day 30 is found that day.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.base import clone  # noqa: E402

from benchmarks.checks_common import machine  # noqa: E402
from governance import detectors  # noqa: E402
from governance import live_simulation as ls  # noqa: E402
from governance.demo import catalogue, market  # noqa: E402

MODEL = "nvda-direction-logistic"
INSTRUMENTS = ("NVDA", "ORCL")
VALIDATION = ("2009-01-01", "2011-12-31")
REPLAY = ("2012-01-01", "2014-12-31")
PARAMETERS = ROOT / "governance" / "policies" / "parameters.yaml"


def shipped_defaults() -> dict[str, Any]:
    """The accuracy rule's parameters as shipped (``parameters.monitoring.accuracy``), in the
    detector's terms: method, shift and the threshold of that method."""
    document = yaml.safe_load(PARAMETERS.read_text(encoding="utf-8"))
    monitoring = (document.get("parameters") or {}).get("monitoring") or {}
    rule = monitoring.get("accuracy")
    if not isinstance(rule, dict):
        raise SystemExit(f"{PARAMETERS} has no parameters.monitoring.accuracy: pass --shift and --threshold")
    method = rule.get("method", "cusum")
    return {"method": method, "shift": rule["shift"], "threshold": rule[f"{method}_threshold"]}


def shipped_losing_defaults(baseline_accuracy: float) -> dict[str, Any]:
    """The losing-trades rule's parameters as shipped (``parameters.monitoring.losing_trades``);
    a null baseline loss rate is 1 - the baseline accuracy (the product takes 1 - the hit rate
    of the latest full assessment: a long/short decision loses when it is wrong)."""
    document = yaml.safe_load(PARAMETERS.read_text(encoding="utf-8"))
    rule = dict(((document.get("parameters") or {}).get("monitoring") or {}).get("losing_trades") or {})
    rate = rule.get("baseline_loss_rate")
    return {
        "baseline_loss_rate": round(1 - baseline_accuracy, 4) if rate is None else rate,
        "max_probability": rule["max_probability"],
        "max_streak_probability": rule.get("max_streak_probability"),
        "window": rule["window"],
    }


def losing_alarm_days(day_of: np.ndarray, pnl: np.ndarray, rule: dict[str, Any]) -> list[int]:
    """As ``alarm_days``, for the losing-trades detector on the trades' P&L."""
    fired: list[int] = []
    begin = 0
    while begin < len(pnl):
        found = detectors.losing_trades(pnl[begin:], **rule)
        if not found.breached:
            break
        day = int(day_of[begin + found.at_index])
        fired.append(day)
        begin = int(np.searchsorted(day_of, day, side="right"))
    return fired


def losing_quality(pool: ls.Pool, *, runs: int, starts: np.ndarray, args: Any, rule: dict[str, Any]) -> dict:
    """The losing-trades rule on the first ``runs`` clean runs, and on their twins with a
    ``losing_streak`` of the default length injected on day 30."""
    clean_alarms = detected = 0
    streak_day = min(30, args.days)
    for run in range(runs):
        common = {
            "days": args.days,
            "decisions_per_day": args.decisions_per_day,
            "seed": args.seed + run,
            "window_days": args.window_days,
            "start": int(starts[run]),
        }
        day_of = np.repeat(np.arange(1, args.days + 1), args.decisions_per_day)
        clean = np.concatenate([d.trade_return for d in ls.replay(pool, **common)])
        clean_alarms += len(losing_alarm_days(day_of, clean, rule))
        streak = ls.Injection("losing_streak", streak_day, float(ls.DEFAULT_STREAK_LENGTH))
        injected = np.concatenate([d.trade_return for d in ls.replay(pool, injections=[streak], **common)])
        detected += streak_day in losing_alarm_days(day_of, injected, rule)
    return {
        "rule": rule,
        "clean_runs": runs,
        "days_monitored": runs * args.days,
        "days_with_alarm": clean_alarms,
        "share_of_days": round(clean_alarms / (runs * args.days), 5) if runs else None,
        "injected_streak": f"losing_streak@{streak_day}:{ls.DEFAULT_STREAK_LENGTH}",
        "streaks_detected_on_their_day": detected,
    }


def real_pool() -> ls.Pool:
    spec = next(m for m in catalogue.MODELS if m.name == MODEL)
    nvda = market.build_features(market.load_prices("NVDA"))
    train = market.features_for_split(nvda, market.SPLITS[0])
    model = clone(spec.estimator).fit(train[market.FEATURES], train[spec.target])
    pools = []
    for ticker in INSTRUMENTS:
        built = market.build_features(market.load_prices(ticker))
        pools.append(
            ls.pool_from_frame(
                instrument=ticker,
                dates=built["Date"],
                features=built[market.FEATURES],
                outcome=built["next_up"],
                next_return=np.expm1(built["next_return"].to_numpy()),
                model=model,
            )
        )
    return ls.merge_pools(pools)


def alarm_days(day_of: np.ndarray, correct: np.ndarray, rule: dict[str, Any]) -> list[int]:
    """Days (from 1) on which the rule fires when evaluated at every day's end on the decisions
    since its last alarm. The detector is sequential, so one call over the remaining series
    gives the first alarm an evaluation at each day's end would see."""
    fired: list[int] = []
    begin = 0
    while begin < len(correct):
        found = detectors.accuracy_drop(correct[begin:], **rule)
        if not found.breached:
            break
        day = int(day_of[begin + found.at_index])
        fired.append(day)
        begin = int(np.searchsorted(day_of, day, side="right"))  # restart the next day
    return fired


def run_once(
    pool: ls.Pool, *, seed: int, days: int, k: int, window: int, start: int, injections: list[ls.Injection], rule: dict
) -> tuple[list[int], list[float]]:
    draws = list(
        ls.replay(
            pool, days=days, decisions_per_day=k, seed=seed, injections=injections, window_days=window, start=start
        )
    )
    correct = np.concatenate([d.correct for d in draws]).astype(float)
    day_of = np.repeat(np.arange(1, days + 1), k)
    return alarm_days(day_of, correct, rule), [d.accuracy for d in draws]


def k_statistics(p0: float, drop: float, days: int, alpha: float, power: float) -> dict[str, Any]:
    """The power of one real decision per instrument per day, and the K a window of ``days`` needs."""
    p1 = p0 - drop
    n_real = len(INSTRUMENTS) * days
    # Best one-sided exact binomial test on the window: reject when the hits are <= c.
    c = int(stats.binom.ppf(alpha, n_real, p0))
    while c >= 0 and stats.binom.cdf(c, n_real, p0) > alpha:
        c -= 1
    real_power = float(stats.binom.cdf(c, n_real, p1)) if c >= 0 else 0.0
    za, zb = stats.norm.ppf(1 - alpha), stats.norm.ppf(power)
    n_needed = math.ceil(((za * math.sqrt(p0 * (1 - p0)) + zb * math.sqrt(p1 * (1 - p1))) / drop) ** 2)
    return {
        "p0": p0,
        "p1": p1,
        "window_days": days,
        "alpha_per_day": alpha,
        "power_target": power,
        "real_decisions_in_window": n_real,
        "real_rejection_region": f"hits <= {c}" if c >= 0 else "none at this alpha",
        "real_power": round(real_power, 4),
        "decisions_needed_in_window": n_needed,
        "decisions_needed_per_day": math.ceil(n_needed / days),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--decisions-per-day", type=int, default=ls.DEFAULT_DECISIONS_PER_DAY)
    parser.add_argument("--window-days", type=int, default=ls.DEFAULT_WINDOW_DAYS)
    parser.add_argument("--size", type=float, default=0.10, help="the injected accuracy drop (fraction)")
    parser.add_argument("--within", type=int, default=5, help="trading days allowed to detect")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--shift", type=float, default=None)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--method", choices=["cusum", "page_hinkley"], default=None)
    parser.add_argument("--baseline", type=float, default=None, help="instead of the validation-period accuracy")
    parser.add_argument(
        "--losing-runs", type=int, default=50, help="clean runs on which to check the losing-trades rule too (0: none)"
    )
    parser.add_argument("--json", type=str, default="")
    args = parser.parse_args()

    before = machine()
    started, started_cpu = time.perf_counter(), time.process_time()
    rule: dict[str, Any] = {}
    if args.shift is None or args.threshold is None:
        rule = shipped_defaults()
    if args.shift is not None:
        rule["shift"] = args.shift
    if args.threshold is not None:
        rule["threshold"] = args.threshold
    if args.method is not None:
        rule["method"] = args.method

    pool = real_pool()
    in_validation = (pool.date >= np.datetime64(VALIDATION[0])) & (pool.date <= np.datetime64(VALIDATION[1]))
    baseline = float(pool.correct[in_validation].mean()) if args.baseline is None else args.baseline
    rule["baseline"] = round(baseline, 4)
    in_replay = (pool.date >= np.datetime64(REPLAY[0])) & (pool.date <= np.datetime64(REPLAY[1]))
    dates = pool.dates
    first = int(np.searchsorted(dates, np.datetime64(REPLAY[0])))
    last_start = int(np.searchsorted(dates, np.datetime64(REPLAY[1]), side="right")) - args.days
    rng = np.random.default_rng(args.seed)
    starts = rng.integers(first, last_start + 1, size=args.runs)
    drop_days = rng.integers(20, 41, size=args.runs)

    delays: list[int | None] = []
    early_alarms = early_days = 0
    clean_alarms = 0
    clean_after, injected_after = [], []  # accuracy from the injection day on, without and with it
    for run in range(args.runs):
        seed = args.seed + run
        common = {
            "seed": seed,
            "days": args.days,
            "k": args.decisions_per_day,
            "window": args.window_days,
            "start": int(starts[run]),
            "rule": rule,
        }
        day = int(drop_days[run])
        fired, accuracy = run_once(pool, injections=[ls.Injection("accuracy_drop", day, args.size)], **common)
        early_alarms += sum(1 for f in fired if f < day)
        early_days += day - 1
        after = [f for f in fired if f >= day]
        delays.append(after[0] - day if after else None)
        clean_fired, clean_accuracy = run_once(pool, injections=[], **common)
        clean_alarms += len(clean_fired)
        clean_after.append(float(np.mean(clean_accuracy[day - 1 :])))
        injected_after.append(float(np.mean(accuracy[day - 1 :])))

    losing = (
        losing_quality(
            pool,
            runs=min(args.losing_runs, args.runs),
            starts=starts,
            args=args,
            rule=shipped_losing_defaults(baseline),
        )
        if args.losing_runs
        else None
    )
    detected = [d for d in delays if d is not None and d < args.within]
    clean_days = args.runs * args.days
    report = {
        "method": (
            f"{args.runs} runs x {args.days} days x {args.decisions_per_day} decisions/day, bootstrap of the real "
            f"rows of {' and '.join(INSTRUMENTS)} (trailing {args.window_days} real trading days, replay dates in "
            f"{REPLAY[0]}..{REPLAY[1]}), model {MODEL}; accuracy_drop injected at a day uniform in 20..40"
        ),
        "rule": rule,
        "baseline_source": (
            f"real accuracy of {MODEL} on {VALIDATION[0]}..{VALIDATION[1]}, both instruments"
            if args.baseline is None
            else "--baseline"
        ),
        "replay_period_accuracy": round(float(pool.correct[in_replay].mean()), 4),
        "injected_size": args.size,
        "measured_drop_mean": round(float(np.mean(np.array(clean_after) - np.array(injected_after))), 4),
        "detection": {
            "runs": args.runs,
            "detected_within": args.within,
            "detected": len(detected),
            "share": round(len(detected) / args.runs, 4),
            "missed_or_late": args.runs - len(detected),
            "delay_days_median": float(np.median(detected)) if detected else None,
            "delay_days_max": int(max(detected)) if detected else None,
            "delay_days_histogram": {str(d): detected.count(d) for d in range(args.within)},
            "target": 0.95,
            "met": len(detected) / args.runs >= 0.95,
        },
        "false_alarms": {
            "clean_runs": args.runs,
            "days_monitored": clean_days,
            "days_with_alarm": clean_alarms,
            "share_of_days": round(clean_alarms / clean_days, 5),
            "pre_injection_days_of_drift_runs": early_days,
            "pre_injection_alarms": early_alarms,
            "pre_injection_share": round(early_alarms / early_days, 5) if early_days else None,
            "target": 0.01,
            "met": clean_alarms / clean_days <= 0.01,
        },
        "losing_trades_rule": losing,
        "k_statistics": k_statistics(round(baseline, 2), args.size, args.within, 0.01, 0.95),
        "machine": before,
        "load_average_after": machine()["load_average"],
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - started_cpu, 1),
        "pid": os.getpid(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        (ROOT / args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
