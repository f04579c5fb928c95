"""Inclusion and consistency proofs from the stored tree (``audit.selectors``), as the API and
``manage.py audit_proof`` serve them.

Target (issue 4): at 1,000,000 events, p95 <= 10 ms per proof.

    .venv/bin/python benchmarks/audit_proofs.py --events 1000000 [--queries 2000] [--runs 3] [--database-url ...]

Builds (or reuses) the fixture of benchmarks/audit_fixture.py, then times ``--queries``
random inclusion proofs (``selectors.inclusion_proof``: random seq, random tree size at or
above it) and as many consistency proofs (``selectors.consistency_proof``: random first <
second), each checked with ``merkle.verify_*`` outside the timing. Prints p50/p95/p99/max
in milliseconds per run and the database queries per proof (min/max).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import audit_fixture


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    audit_fixture.add_arguments(parser)
    parser.add_argument("--queries", type=int, default=2000, help="proofs of each kind per run (default %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    audit_fixture.prepare(events=args.events, database_url=args.database_url, rebuild=args.rebuild)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit import merkle, selectors

    size = selectors.head().size
    rng = random.Random(args.seed)
    runs = []
    for run in range(1, args.runs + 1):
        timings: dict[str, list[float]] = {"inclusion": [], "consistency": []}
        queries: dict[str, list[int]] = {"inclusion": [], "consistency": []}
        for _ in range(args.queries):
            seq = rng.randint(1, size)
            tree_size = rng.choice([size, rng.randint(seq, size)])
            connection.queries_log.clear()  # else the count saturates at the log's 9,000 entries
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                proof = selectors.inclusion_proof(seq=seq, tree_size=tree_size)
                timings["inclusion"].append(time.perf_counter() - started)
            queries["inclusion"].append(len(captured))
            merkle.verify_inclusion(
                proof["leaf_index"],
                proof["tree_size"],
                bytes.fromhex(proof["leaf_hash"]),
                [bytes.fromhex(h) for h in proof["proof"]],
                bytes.fromhex(proof["root_hash"]),
            )

            first = rng.randint(1, size - 1)
            second = rng.choice([size, rng.randint(first + 1, size)])
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                proof = selectors.consistency_proof(first=first, second=second)
                timings["consistency"].append(time.perf_counter() - started)
            queries["consistency"].append(len(captured))
            merkle.verify_consistency(
                first,
                second,
                bytes.fromhex(proof["first_root"]),
                bytes.fromhex(proof["second_root"]),
                [bytes.fromhex(h) for h in proof["proof"]],
            )
        result = {kind: _percentiles(values) for kind, values in timings.items()}
        for kind in result:
            result[kind]["queries_min"] = min(queries[kind])
            result[kind]["queries_max"] = max(queries[kind])
        runs.append(result)
        for kind, stats in result.items():
            print(
                f"run {run} {kind:11s}: p50 {stats['p50_ms']:.2f} ms, p95 {stats['p95_ms']:.2f} ms, "
                f"p99 {stats['p99_ms']:.2f} ms, max {stats['max_ms']:.2f} ms, "
                f"{stats['queries_min']}-{stats['queries_max']} queries"
            )
    summary = {
        "benchmark": "audit_proofs",
        "database": connection.vendor,
        "events": size,
        "queries_per_run": args.queries,
        "runs": args.runs,
    }
    for kind in ("inclusion", "consistency"):
        p95s = [r[kind]["p95_ms"] for r in runs]
        summary[kind] = {
            "best_p50_ms": round(min(r[kind]["p50_ms"] for r in runs), 3),
            "best_p95_ms": round(min(p95s), 3),
            "median_p95_ms": round(statistics.median(p95s), 3),
            "best_p99_ms": round(min(r[kind]["p99_ms"] for r in runs), 3),
            "median_p99_ms": round(statistics.median(r[kind]["p99_ms"] for r in runs), 3),
            "queries_min": min(r[kind]["queries_min"] for r in runs),
            "queries_max": max(r[kind]["queries_max"] for r in runs),
        }
    summary["target_p95_ms"] = 10
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
