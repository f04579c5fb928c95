"""PBO speed (issue 7): 16 partitions over 50 configurations in at most 5 s.

    .venv/bin/python benchmarks/checks_pbo.py [--runs 5] [--periods 5040 2520 10080] [--json FILE]

Times ``models_registry.checks.overfitting.probability_of_backtest_overfitting`` by CSCV
with S = 16 partitions (C(16, 8) = 12,870 combinations) over N = 50 configurations of
seeded synthetic daily returns (T periods; 5,040 = 20 years of 252 days by default, also
other lengths), with the Sharpe ratio as the statistic and the logits in the result (what
the job stores). Prints best/median wall-clock and CPU times and the machine and load
average as JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from checks_common import ROOT, machine, time_runs

from models_registry.checks.overfitting import probability_of_backtest_overfitting

TARGET_MS = 5000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--configurations", type=int, default=50)
    parser.add_argument("--periods", type=int, nargs="+", default=[5040, 2520, 10080])
    parser.add_argument("--json", type=str, default="")
    args = parser.parse_args()
    before = machine()
    timings = {}
    for periods in args.periods:
        matrix = np.random.default_rng(0).normal(0.0002, 0.01, (periods, args.configurations))
        result = probability_of_backtest_overfitting(matrix, args.partitions)
        timing = time_runs(lambda m=matrix: probability_of_backtest_overfitting(m, args.partitions), args.runs, 1)
        timing["pbo"] = result["pbo"]
        timing["combinations"] = result["n_combinations"]
        timings[f"T={periods}, N={args.configurations}, S={args.partitions}"] = timing
    report = {
        "target_ms": TARGET_MS,
        "machine": before,
        "load_average_after": machine()["load_average"],
        "timings": timings,
        "met": all(t["wall_median_ms"] <= TARGET_MS for t in timings.values()),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        (ROOT / args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
