"""Audited write overhead: N creates and N updates of a governed object, one transaction each.

Compares, on identical models (``benchmarks/benchapp``), the same service-style write

* ``plain``: with no history (the baseline every ratio is taken against, same run),
* ``ours``: plus ``audit.services.record_event`` with before/after snapshots, as the
  product's services do,
* ``auditlog``, ``simple_history``, ``pghistory`` (PostgreSQL only): recorded by those
  libraries, with the actor set the way each library expects,
* ``ours_python`` (PostgreSQL only): ``ours`` with the append done by the application, as
  on SQLite, instead of the server's ``audit_append`` (decision 0017).

Each operation is its own ``transaction.atomic()`` (one request = one transaction), so
the commit is part of the cost. Every repetition starts from the same fresh database and
runs the variants in a rotated order; the report gives the best and the median.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/audit_write.py --db sqlite --n 10000 --repeat 5
    .venv/bin/python benchmarks/audit_write.py --db postgres --n 10000 --repeat 5

Results and method: docs/benchmarks.md ("Audited writes").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from collections.abc import Iterator
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

RECORDS = {
    "plain": "nothing",
    "ours": "event with before+after snapshots, actor, request id; hash chain; Merkle subtrees",
    "auditlog": "LogEntry with the changed fields' old/new values (create: all fields), actor; no chain",
    "simple_history": "full copy of the row after the change, actor, type; no before, no chain",
    "pghistory": "full copy of the row after the change (trigger), context row with the actor; no chain",
    "ours_python": "as ours, appended by the application in two round trips instead of audit_append (PostgreSQL)",
}


class Variant:
    """One way of writing: how to create and update a row, and how many history rows it left."""

    def __init__(self, name: str, model: type, actor: Any, desk: Any) -> None:
        self.name, self.model, self.actor, self.desk = name, model, actor, desk

    def create(self, i: int) -> int:
        raise NotImplementedError

    def update(self, pk: int, revision: int) -> None:
        raise NotImplementedError

    def history_rows(self) -> int:
        return 0


def _variants(actor: Any, desk: Any) -> dict[str, Variant]:
    from auditlog.context import set_actor
    from auditlog.models import LogEntry
    from django.conf import settings
    from django.db import transaction

    from audit.models import Event, TreeNode
    from audit.services import record_event
    from audit.snapshot import snapshot
    from benchmarks.benchapp import models as m

    class Plain(Variant):
        def create(self, i: int) -> int:
            with transaction.atomic():
                obj = self.model(**item_fields(i, owner=self.actor, desk=self.desk, prefix=self.name))
                obj.save()
            return obj.pk

        def update(self, pk: int, revision: int) -> None:
            with transaction.atomic():
                obj = self.model.objects.select_for_update().get(pk=pk)
                apply_update(obj, revision)
                obj.save()

    class Ours(Variant):
        # What models_registry.services.model_create / model_update do around the write.
        def create(self, i: int) -> int:
            with transaction.atomic():
                obj = self.model(**item_fields(i, owner=self.actor, desk=self.desk, prefix=self.name))
                obj.save()
                record_event(actor=self.actor, action="item.created", target=obj, after=snapshot(obj))
            return obj.pk

        def update(self, pk: int, revision: int) -> None:
            with transaction.atomic():
                obj = self.model.objects.select_for_update().get(pk=pk)
                before = snapshot(obj)
                apply_update(obj, revision)
                obj.save()
                record_event(actor=self.actor, action="item.updated", target=obj, before=before, after=snapshot(obj))

        def history_rows(self) -> int:
            return Event.objects.count() + TreeNode.objects.count()

    class Auditlog(Plain):
        # auditlog's middleware sets the actor once per request; here, once per operation.
        def create(self, i: int) -> int:
            with set_actor(self.actor):
                return super().create(i)

        def update(self, pk: int, revision: int) -> None:
            with set_actor(self.actor):
                super().update(pk, revision)

        def history_rows(self) -> int:
            return LogEntry.objects.count()

    class SimpleHistory(Variant):
        # _history_user is how simple-history takes the actor outside a request.
        def create(self, i: int) -> int:
            with transaction.atomic():
                obj = self.model(**item_fields(i, owner=self.actor, desk=self.desk, prefix=self.name))
                obj._history_user = self.actor
                obj.save()
            return obj.pk

        def update(self, pk: int, revision: int) -> None:
            with transaction.atomic():
                obj = self.model.objects.select_for_update().get(pk=pk)
                apply_update(obj, revision)
                obj._history_user = self.actor
                obj.save()

        def history_rows(self) -> int:
            return self.model.history.count()

    variants: dict[str, Variant] = {
        "plain": Plain("plain", m.PlainItem, actor, desk),
        "ours": Ours("ours", m.OurItem, actor, desk),
        "auditlog": Auditlog("auditlog", m.AuditlogItem, actor, desk),
        "simple_history": SimpleHistory("simple_history", m.SimpleHistoryItem, actor, desk),
    }
    if settings.BENCH_POSTGRES:
        import pghistory
        from pghistory.models import Context

        class Pghistory(Plain):
            # pghistory.context is what its middleware opens per request; it carries the actor.
            def create(self, i: int) -> int:
                with pghistory.context(user=self.actor.pk):
                    return super().create(i)

            def update(self, pk: int, revision: int) -> None:
                with pghistory.context(user=self.actor.pk):
                    super().update(pk, revision)

            def history_rows(self) -> int:
                return self.model.pgh_event_model.objects.count() + Context.objects.count()

        variants["pghistory"] = Pghistory("pghistory", m.PghistoryItem, actor, desk)

        class OursInPython(Ours):
            # The same append done by the application (two round trips), as on SQLite: what the
            # server-side append (audit_append, decision 0017) saves, measured in the same run.
            def create(self, i: int) -> int:
                with _appending_in_python():
                    return super().create(i)

            def update(self, pk: int, revision: int) -> None:
                with _appending_in_python():
                    super().update(pk, revision)

        variants["ours_python"] = OursInPython("ours_python", m.OurItem, actor, desk)
    return variants


@contextlib.contextmanager
def _appending_in_python() -> Iterator[None]:
    from audit import services

    in_database = services._appends_in_database
    services._appends_in_database = lambda connection: False
    try:
        yield
    finally:
        services._appends_in_database = in_database


def run(args: argparse.Namespace) -> dict[str, Any]:
    db = FreshDatabase()
    db.prepare(seed_actor_and_desk)
    names: list[str] | None = None
    # seconds[workload][variant] -> one value per repetition
    seconds: dict[str, dict[str, list[float]]] = {"create": {}, "update": {}}
    cpu: dict[str, dict[str, list[float]]] = {"create": {}, "update": {}}
    queries: dict[str, dict[str, float]] = {"create": {}, "update": {}}
    rows_per_op: dict[str, float] = {}

    def result() -> dict[str, Any]:
        return {
            "environment": environment(),
            "n": args.n,
            "repeat": args.repeat,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "queries_per_op": queries,
            "history_rows_per_op": rows_per_op,
        }

    for rep in range(args.repeat):
        db.restore()
        actor, desk = actor_and_desk()
        variants = _variants(actor, desk)
        names = names or [n for n in variants if not args.only or n in args.only]
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            variant = variants[name]
            before_rows = variant.history_rows()
            pks: list[int] = []
            with timed(seconds["create"].setdefault(name, []), cpu["create"].setdefault(name, [])):
                for i in range(args.n):
                    pks.append(variant.create(i))
            with timed(seconds["update"].setdefault(name, []), cpu["update"].setdefault(name, [])):
                for pk in pks:
                    variant.update(pk, rep)
            if rep == 0:
                rows_per_op[name] = (variant.history_rows() - before_rows) / (2 * args.n)
                # Counted apart from the timed loops: capturing queries slows them down.
                k = args.count_ops
                extra = [variant.create(args.n + i) for i in range(k)]
                first = args.n + k
                queries["create"][name] = (
                    count_queries(lambda v=variant, s=first, k=k: [v.create(s + i) for i in range(k)]) / k
                )
                queries["update"][name] = count_queries(lambda v=variant, e=extra: [v.update(pk, 99) for pk in e]) / k
        print(
            f"rep {rep + 1}/{args.repeat}: "
            + ", ".join(f"{n} {seconds['create'][n][-1]:.2f}+{seconds['update'][n][-1]:.2f}s" for n in order),
            file=sys.stderr,
            flush=True,
        )
        if args.json:
            # After every repetition, so that an interrupted run still leaves its numbers.
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result(), indent=2))
    return result()


def _ratios(values: list[float], baseline: list[float]) -> str:
    ratios = [v / b for v, b in zip(values, baseline, strict=True)]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f})"


def report(result: dict[str, Any]) -> str:
    """A markdown table per workload and variant: wall time, CPU time, queries/op, ratios to plain.

    Ratios are taken within each repetition (same database, same minute) and then
    summarised as median (best).
    """
    n = result["n"]
    lines = [
        "| workload | variant | wall s best / median | µs/op (median) | x plain wall | CPU µs/op (median) "
        "| x plain CPU | queries/op | history rows/op |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, by_variant in result["seconds"].items():
        cpu = result["cpu_seconds"][workload]
        for name, values in by_variant.items():
            wall_ratio = cpu_ratio = "-"
            if "plain" in by_variant and name != "plain":
                wall_ratio = _ratios(values, by_variant["plain"])
                cpu_ratio = _ratios(cpu[name], cpu["plain"])
            lines.append(
                f"| {n:,} {workload}s | {name} | {min(values):.2f} / {statistics.median(values):.2f} "
                f"| {statistics.median(values) / n * 1e6:.0f} | {wall_ratio} "
                f"| {statistics.median(cpu[name]) / n * 1e6:.0f} | {cpu_ratio} "
                f"| {result['queries_per_op'][workload][name]:.2f} | {result['history_rows_per_op'][name]:.2f} |"
            )
    lines.append("")
    lines.extend(f"- {name}: {RECORDS[name]}" for name in result["history_rows_per_op"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_database_arguments(parser, default_name="bench_write")
    parser.add_argument("--n", type=int, default=10_000, help="creates, then as many updates, per variant")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count-ops", type=int, default=64, help="operations sampled for queries/op")
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
