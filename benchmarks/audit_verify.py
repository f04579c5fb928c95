"""Full verification of the audit log (``audit.verify.verify_log``, i.e. ``manage.py audit_verify``).

Target (issue 4): 1,000,000 events verified at >= 100,000 events/s.

    .venv/bin/python benchmarks/audit_verify.py --events 1000000 [--runs 3] [--database-url postgres://...]

Builds (or reuses) a fixture database of N events (benchmarks/audit_fixture.py), then
times ``verify_log()`` ``--runs`` times in this process and prints each run, the best and
the median, with the CPU time of every process involved: this one, its worker processes
and, on PostgreSQL, the server's backends (see ``ServerCpu``). ``--workers N`` passes
``verify_log(workers=N)`` (what ``audit_verify`` does by default on large logs).
``--profile`` prints the top of a cProfile of one run instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import audit_fixture

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds of a process on this machine (user + system), or of its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / _TICK


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class ServerCpu:
    """CPU of the PostgreSQL server for this benchmark: this connection's backend, plus the
    backends that exited meanwhile (the workers' connections), which the postmaster
    accounts as reaped children. On a shared machine the latter may include other
    clients' backends that ended in the same window: an upper bound."""

    def __init__(self) -> None:
        from django.db import connection

        self.backend = self.postmaster = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.backend = cursor.fetchone()[0]
            self.postmaster = int(Path(f"/proc/{self.backend}/stat").read_text().rsplit(")", 1)[1].split()[1])

    def read(self) -> float:
        if self.backend is None:
            return 0.0
        try:
            own = _proc_cpu(self.backend)
        except FileNotFoundError:  # the connection was closed (the workers' path closes it)
            own = 0.0
        return own + _proc_cpu(self.postmaster, children=True)


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

    seconds, cpus = [], []
    for run in range(1, args.runs + 1):
        server = ServerCpu()
        load_before = os.getloadavg()[0]
        server_cpu = server.read()
        started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        result = verify_log(workers=args.workers)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        children = _children_cpu() - children
        server_cpu = server.read() - server_cpu
        if not result.ok:
            sys.exit(f"the fixture does not verify: {result.problems[:3]} {result.unverifiable[:3]}")
        seconds.append(elapsed)
        total = cpu + children + server_cpu
        cpus.append({"process": cpu, "workers": children, "server": server_cpu, "total": total})
        print(
            f"run {run}: {result.size:,} events in {elapsed:.2f} s = {result.size / elapsed:,.0f} events/s; "
            f"CPU {total:.2f} s in all = {result.size / total:,.0f} events per CPU-second (this process "
            f"{cpu:.2f} s, worker processes {children:.2f} s, database server {server_cpu:.2f} s); "
            f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
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
        "cpu_total_s": [round(c["total"], 2) for c in cpus],
        "cpu_process_s": [round(c["process"], 2) for c in cpus],
        "cpu_workers_s": [round(c["workers"], 2) for c in cpus],
        "cpu_server_s": [round(c["server"], 2) for c in cpus],
        "median_events_per_cpu_s": round(result.size / statistics.median(c["total"] for c in cpus)),
        "target_events_per_s": 100_000,
        "python": platform.python_version(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
