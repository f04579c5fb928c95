"""Detection quality of the losing-trades rule (issue 8) on simulated trade streams.

    .venv/bin/python benchmarks/anomaly_losing_trades.py [--trades-per-day 200] [--days 60] [--runs 10]
        [--max-probability 0.00001] [--max-streak-probability 0.001] [--window 50] [--seed 11] [--json FILE]

``governance.detectors.losing_trades`` with the given limits (default: the shipped ones in
governance/policies/parameters.yaml) and a baseline loss rate of 0.5, on independent trades:

* clean: ``--runs`` streams of ``--days`` days at the baseline loss rate; after an alarm the
  detector restarts from the next trade (as it does after an alert is resolved); reported as
  alarms per clean day, by cause (streak or ratio);
* streak: 100 streams of 3 days with 15 losses in a row injected at trade 300 (what
  ``simulate_live --inject losing_streak`` injects by default); found when the alarm fires
  within the streak;
* loss rate: 40 streams whose loss rate rises from 0.5 to 0.75; the delay to the alarm in days.

Prints the machine and the load, then a JSON summary. Pure NumPy/SciPy: no database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance import detectors  # noqa: E402  (pure module: no Django set-up needed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades-per-day", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-probability", type=float, default=0.00001)
    parser.add_argument("--max-streak-probability", type=float, default=0.001)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"load average at start: {os.getloadavg()}")
    rng = np.random.default_rng(args.seed)
    per_day = args.trades_per_day
    rule = {
        "baseline_loss_rate": 0.5,
        "max_probability": args.max_probability,
        "max_streak_probability": args.max_streak_probability,
        "window": args.window,
    }
    started = time.perf_counter()

    alarms: dict[str, int] = {"streak": 0, "ratio": 0}
    for _ in range(args.runs):
        pnl = np.where(rng.random(per_day * args.days) < 0.5, -1.0, 1.0)
        start = 0
        while start < pnl.size:
            found = detectors.losing_trades(pnl[start:], **rule)
            if not found.breached:
                break
            alarms[found.detail["alarm"]["cause"]] += 1
            start += found.at_index + 1
    clean_days = args.runs * args.days

    streaks = 0
    for _ in range(100):
        pnl = np.where(rng.random(per_day * 3) < 0.5, -1.0, 1.0)
        pnl[300:315] = -1.0
        found = detectors.losing_trades(pnl, **rule)
        streaks += bool(found.breached and 300 <= found.at_index < 315)

    delays = []
    for _ in range(40):
        after = np.where(rng.random(per_day * 10) < 0.75, -1.0, 1.0)
        found = detectors.losing_trades(after, **rule)
        delays.append(found.at_index / per_day if found.breached else float("inf"))

    summary = {
        "rule": rule,
        "trades_per_day": per_day,
        "clean_days": clean_days,
        "clean_alarms": alarms,
        "clean_days_with_alarm_pct": 100 * sum(alarms.values()) / clean_days,
        "injected_streak_15_found_pct": streaks,
        "loss_rate_0_75_delay_days": {
            "median": float(np.median(delays)),
            "p95": float(np.percentile(delays, 95)),
            "found_pct": 100 * float(np.mean(np.isfinite(delays))),
        },
        "seconds": time.perf_counter() - started,
        "load_average_end": os.getloadavg(),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
