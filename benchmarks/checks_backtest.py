"""Backtest speed (issue 7): 20 years of daily data in at most 0.2 s.

    .venv/bin/python benchmarks/checks_backtest.py [--runs 50] [--json FILE]

Times ``models_registry.checks.backtest.run_backtest`` on the real ORCL closes of
governance/demo/data/market (1995-01-03 to 2014-12-31: 20 years, 5,036 closes) with a
50-day moving-average trend signal (computed once, outside the timing), costs and
slippage, in three variants: sizing by the signal, volatility targeting, and the
backtest plus its JSON-safe result with the equity curves (``to_dict``), which is what the
job stores. Also times the robustness views of that backtest (regimes and stress
windows), which the job runs next. Prints best/median wall-clock and CPU times per
variant and the machine and load average as JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from checks_common import ROOT, machine, time_runs

from models_registry.checks.backtest import run_backtest
from models_registry.checks.robustness import backtest_robustness

TARGET_MS = 200.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", type=str, default="")
    args = parser.parse_args()
    path = next((ROOT / "governance" / "demo" / "data" / "market").glob("orcl-*.csv"))
    frame = pd.read_csv(path, parse_dates=["Date"])
    prices = frame.set_index("Date")["Adj Close"].astype(float)
    signals = np.sign(prices.pct_change().rolling(50).mean()).fillna(0.0)
    kwargs = {"cost_bps": 5.0, "slippage_bps": 2.0}
    result = run_backtest(prices, signals, **kwargs)
    variants = {
        "run_backtest (signal sizing)": lambda: run_backtest(prices, signals, **kwargs),
        "run_backtest (volatility target)": lambda: run_backtest(
            prices, signals, sizing="vol_target", target_volatility=0.15, max_leverage=2.0, **kwargs
        ),
        "run_backtest + to_dict (equity curves)": lambda: run_backtest(prices, signals, **kwargs).to_dict(),
        "backtest_robustness (regimes + stress windows)": lambda: backtest_robustness(result, prices),
    }
    before = machine()
    timings = {name: time_runs(fn, args.runs) for name, fn in variants.items()}
    report = {
        "data": f"{path.name}: {len(prices)} closes, {prices.index[0].date()} to {prices.index[-1].date()}",
        "target_ms": TARGET_MS,
        "machine": before,
        "load_average_after": machine()["load_average"],
        "timings": timings,
        "met": all(t["wall_median_ms"] <= TARGET_MS for name, t in timings.items() if name.startswith("run_backtest")),
        "check": {k: result.metrics[k] for k in ("total_return", "sharpe_ratio", "max_drawdown", "n_trades")},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        (ROOT / args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
