"""Bulk update of N rows in one transaction, every row's change recorded: queries and time.

Variants, on identical models (``benchmarks/benchapp``), all loading the N rows, changing
two fields and writing them with ``bulk_update(batch_size=500)``:

* ``plain``: nothing recorded (the baseline),
* ``ours``: plus one audit event per row with before/after snapshots, appended with
  ``audit.services.record_events`` (one head lock, multi-row INSERTs),
* ``ours_per_row``: the same events appended by a ``record_event`` call per row, to show
  what the batch form saves,
* ``simple_history``: ``simple_history.utils.bulk_update_with_history`` (bulk_update plus
  bulk-created history rows),
* ``pghistory`` (PostgreSQL only): the same ``bulk_update`` inside ``pghistory.context``;
  its row triggers record every row.

django-auditlog is left out: it records through model signals, which ``bulk_update`` does
not send, so it would record nothing.

    .venv/bin/python benchmarks/audit_write_bulk.py --db sqlite --n 10000 --repeat 5
    .venv/bin/python benchmarks/audit_write_bulk.py --db postgres --n 10000 --repeat 5

Results and method: docs/benchmarks.md ("Audited writes").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.audit_write_common import (
    FreshDatabase,
    actor_and_desk,
    add_database_arguments,
    apply_update,
    count_queries,
    environment,
    item_fields,
    seed_actor_and_desk,
    setup_django,
    timed,
)

FIELDS = ["description", "materiality"]
BATCH_SIZE = 500


def _operations(actor: Any) -> dict[str, tuple[type, Callable[[int], None], Callable[[], int]]]:
    """Per variant: the model, the timed bulk change (given a revision) and a count of history rows."""
    from django.conf import settings
    from django.db import transaction
    from simple_history.utils import bulk_update_with_history

    from audit.models import Event
    from audit.services import record_event, record_events
    from audit.snapshot import snapshot
    from benchmarks.benchapp import models as m

    def plain(revision: int) -> None:
        with transaction.atomic():
            objs = list(m.PlainItem.objects.order_by("pk"))
            for obj in objs:
                apply_update(obj, revision)
            m.PlainItem.objects.bulk_update(objs, FIELDS, batch_size=BATCH_SIZE)

    def ours(revision: int) -> None:
        # What a per-row audited bulk service does: before/after of every row, one event each.
        with transaction.atomic():
            objs = list(m.OurItem.objects.order_by("pk"))
            befores = [snapshot(obj) for obj in objs]
            for obj in objs:
                apply_update(obj, revision)
            m.OurItem.objects.bulk_update(objs, FIELDS, batch_size=BATCH_SIZE)
            record_events(
                actor=actor,
                entries=[
                    {"action": "item.updated", "target": obj, "before": before, "after": snapshot(obj)}
                    for obj, before in zip(objs, befores, strict=True)
                ],
            )

    def ours_per_row(revision: int) -> None:
        with transaction.atomic():
            objs = list(m.OurItem.objects.order_by("pk"))
            befores = [snapshot(obj) for obj in objs]
            for obj in objs:
                apply_update(obj, revision)
            m.OurItem.objects.bulk_update(objs, FIELDS, batch_size=BATCH_SIZE)
            for obj, before in zip(objs, befores, strict=True):
                record_event(actor=actor, action="item.updated", target=obj, before=before, after=snapshot(obj))

    def simple_history(revision: int) -> None:
        with transaction.atomic():
            objs = list(m.SimpleHistoryItem.objects.order_by("pk"))
            for obj in objs:
                apply_update(obj, revision)
            bulk_update_with_history(objs, m.SimpleHistoryItem, FIELDS, batch_size=BATCH_SIZE, default_user=actor)

    operations: dict[str, tuple[type, Callable[[int], None], Callable[[], int]]] = {
        "plain": (m.PlainItem, plain, lambda: 0),
        "ours": (m.OurItem, ours, Event.objects.count),
        "ours_per_row": (m.OurItem, ours_per_row, Event.objects.count),
        "simple_history": (m.SimpleHistoryItem, simple_history, m.SimpleHistoryItem.history.count),
    }
    if settings.BENCH_POSTGRES:
        import pghistory

        def pghistory_bulk(revision: int) -> None:
            with pghistory.context(user=actor.pk), transaction.atomic():
                objs = list(m.PghistoryItem.objects.order_by("pk"))
                for obj in objs:
                    apply_update(obj, revision)
                m.PghistoryItem.objects.bulk_update(objs, FIELDS, batch_size=BATCH_SIZE)

        operations["pghistory"] = (
            m.PghistoryItem,
            pghistory_bulk,
            m.PghistoryItem.pgh_event_model.objects.count,
        )
    return operations


def _seed_rows(model: type, n: int, actor: Any, desk: Any) -> None:
    """N rows to update; written with plain bulk_create, outside the timing and unrecorded."""
    from django.db import transaction

    if model.objects.exists():
        return
    with transaction.atomic():
        model.objects.bulk_create(
            [model(**item_fields(i, owner=actor, desk=desk, prefix="bulk")) for i in range(n)], batch_size=500
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    db = FreshDatabase()
    db.prepare(seed_actor_and_desk)
    seconds: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    queries: dict[str, int] = {}
    history: dict[str, int] = {}
    names: list[str] | None = None

    def result() -> dict[str, Any]:
        return {
            "environment": environment(),
            "n": args.n,
            "repeat": args.repeat,
            "batch_size": BATCH_SIZE,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "queries": queries,
            "history_rows": history,
        }

    for rep in range(args.repeat):
        db.restore()
        actor, desk = actor_and_desk()
        operations = _operations(actor)
        names = names or [n for n in operations if not args.only or n in args.only]
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            model, operation, history_rows = operations[name]
            _seed_rows(model, args.n, actor, desk)
            before = history_rows()
            with timed(seconds.setdefault(name, []), cpu.setdefault(name, [])):
                operation(rep)
            if rep == 0:
                history[name] = history_rows() - before
                # Counted apart from the timing, on a second identical change.
                queries[name] = count_queries(lambda op=operation: op(1000))
        print(
            f"rep {rep + 1}/{args.repeat}: " + ", ".join(f"{n} {seconds[n][-1]:.2f}s" for n in order), file=sys.stderr
        )
        if args.json:
            # After every repetition, so that an interrupted run still leaves its numbers.
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result(), indent=2))
    return result()


def report(result: dict[str, Any]) -> str:
    n = result["n"]
    seconds, cpu = result["seconds"], result["cpu_seconds"]
    lines = [
        f"| bulk update of {n:,} rows | wall s best / median | µs/row (median) | x plain wall (median) "
        "| CPU s (median) | queries | history rows |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, values in seconds.items():
        ratio = "-"
        if "plain" in seconds and name != "plain":
            ratio = f"{statistics.median(v / p for v, p in zip(values, seconds['plain'], strict=True)):.2f}"
        median = statistics.median(values)
        lines.append(
            f"| {name} | {min(values):.2f} / {median:.2f} | {median / n * 1e6:.0f} "
            f"| {ratio} | {statistics.median(cpu[name]):.2f} | {result['queries'][name]:,} "
            f"| {result['history_rows'][name]:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_database_arguments(parser, default_name="bench_write_bulk")
    parser.add_argument("--n", type=int, default=10_000, help="rows updated in the one transaction")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write the raw results here (after every repetition)")
    parser.add_argument("--report", type=Path, help="only print the tables of results saved with --json")
    args = parser.parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    setup_django(args)
    result = run(args)
    print(json.dumps(result["environment"], indent=2))
    print(report(result))


if __name__ == "__main__":
    main()
