"""Full verification of the audit log (``audit.verify.verify_log``, i.e. ``manage.py audit_verify``).

Target (issue 4): 1,000,000 events verified at >= 100,000 events/s.

    .venv/bin/python benchmarks/audit_verify.py --events 1000000 [--runs 3] [--database-url postgres://...]

Builds (or reuses) a fixture database of N events (benchmarks/audit_fixture.py), then
times ``verify_log()`` ``--runs`` times in this process and prints each run, the best and
the median. ``--workers N`` passes ``verify_log(workers=N)`` (what ``audit_verify``
does by default on large logs). ``--profile`` prints the top of a cProfile of one run instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import audit_fixture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    audit_fixture.add_arguments(parser)
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="verify_log(workers=...) (default %(default)s)")
    parser.add_argument("--profile", action="store_true", help="profile one run and print the top functions")
    args = parser.parse_args()
    audit_fixture.prepare(events=args.events, database_url=args.database_url, rebuild=args.rebuild)

    from django.db import connection

    from audit.verify import verify_log

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        result = verify_log()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return

    seconds = []
    for run in range(1, args.runs + 1):
        started, cpu = time.perf_counter(), time.process_time()
        result = verify_log(workers=args.workers)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if not result.ok:
            sys.exit(f"the fixture does not verify: {result.problems[:3]} {result.unverifiable[:3]}")
        seconds.append(elapsed)
        print(
            f"run {run}: {result.size:,} events in {elapsed:.2f} s = {result.size / elapsed:,.0f} events/s "
            f"(CPU of this process {cpu:.2f} s; load average {os.getloadavg()[0]:.2f})"
        )
    best, median = min(seconds), statistics.median(seconds)
    summary = {
        "benchmark": "audit_verify",
        "database": connection.vendor,
        "events": result.size,
        "checkpoints_checked": result.checkpoints_checked,
        "workers": args.workers,
        "runs": len(seconds),
        "best_s": round(best, 3),
        "median_s": round(median, 3),
        "best_events_per_s": round(result.size / best),
        "median_events_per_s": round(result.size / median),
        "target_events_per_s": 100_000,
        "python": platform.python_version(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
