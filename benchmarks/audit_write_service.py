"""Audited write overhead through the product's own services: N ``model_create`` and N
``model_update`` calls (models_registry.services), with the audit log, without it, and with
the comparison libraries recording the history instead.

``audit_write.py`` compares a bare model write with the same write plus ``record_event``
(and with the history libraries). This script measures what the issue's words name, "a
governed object through services, with the audit log vs without": the same service calls,
by a model owner on their desk (as the API makes them: permission and scope checks,
``full_clean``, the write, the visibility check), as the product runs them, with the audit
log taken out, and with the audit log taken out and a library tracking the model instead:

* ``unaudited``: ``record_event`` replaced by a function that only tells the governed-write
  guard that the row's event was written (so the guard, which would otherwise refuse the
  write, passes) and writes nothing: no event, no tree node, no head update, no canonical
  text or hashes. The snapshots the services take before calling ``record_event`` stay
  (``model_update`` compares them to skip a write that changes nothing), so this baseline
  keeps about 40-50 µs per write of work that only the audit needs;
* ``audited``: the services as they are;
* ``auditlog``, ``simple_history``, ``pghistory`` (PostgreSQL only): ``unaudited`` plus
  django-auditlog, django-simple-history or django-pghistory recording the history of
  ``models_registry.Model``, the model the services write. Each is told the actor once per
  service call, as its middleware would once per request: ``auditlog.context.set_actor``,
  the request simple-history reads the user from (what ``HistoryRequestMiddleware`` sets;
  the services leave no instance to put ``_history_user`` on), ``pghistory.context(user=...)``.

The libraries' history models of ``Model`` live in the benchmark app
(``benchmarks/benchapp/service_history.py``, loaded only because this script sets
``BENCH_SERVICE_HISTORY``; the product's code and migrations are untouched), so their
(empty) tables are in every variant's database, but only a library variant has its library
recording: switched on before its timed loops and off once its writes are counted, in the
variant's own process. auditlog is registered for ``Model`` and unregistered (its registry connects
and disconnects its signal receivers); simple-history's receivers, disconnected at
start-up, are connected and disconnected again; pghistory's triggers, kept out of the
template, are installed in the variant's fresh database. In every other variant no
receiver or trigger of theirs is on ``Model``, so ``unaudited`` and ``audited`` do what
they did before the library variants existed. Every variant makes the same calls the same
way: the library variants inside their actor context, the others inside a no-op one
(``nullcontext``, well under a microsecond a call).

Each call is its own transaction (the service's). Every variant runs in a process of its own,
forked from the script's before any variant ran, and every variant of every repetition starts
from the same fresh database (the same migrated template: its audit log holds the
migrations' and the seed's events), in a rotated order; ratios are taken within a
repetition. History rows per write count what each variant left in every store (our
events and tree nodes, each library's rows), over all the writes it made.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/audit_write_service.py --db sqlite --n 10000 --repeat 3
    .venv/bin/python benchmarks/audit_write_service.py --db postgres --n 10000 --repeat 3
    .venv/bin/python benchmarks/audit_write_service.py --db sqlite --only unaudited audited

Results and method: docs/benchmarks.md ("Audited writes through the services").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.audit_write_common import (
    FreshDatabase,
    add_database_arguments,
    count_queries,
    environment,
    setup_django,
    timed,
)

LIBRARIES = ("auditlog", "simple_history", "pghistory")
VARIANTS = ("unaudited", "audited", *LIBRARIES)
RECORDS = {
    "unaudited": "nothing (record_event only tells the guard)",
    "audited": "event with before+after snapshots, actor, request id; hash chain; Merkle tree nodes",
    "auditlog": "LogEntry with the changed fields' old/new values (create: all fields), actor; no chain",
    "simple_history": "full copy of the row after the change, actor, type; no before, no chain",
    "pghistory": "full copy of the row after the change (trigger), context row with the actor; no chain",
}
OWNER = "bench-owner"
DESK = "bench-desk"
PASSWORD = "bench-owner-password-1"


def seed() -> None:
    """A desk and a model owner on it, through the services (as the demo makes them)."""
    from audit.services import SystemActor
    from governance import services as org
    from governance.roles import Role

    actor = SystemActor("benchmark")
    desk = org.desk_create(actor=actor, code=DESK, name="Benchmark desk")
    org.user_create(actor=actor, username=OWNER, password=PASSWORD, roles=[Role.MODEL_OWNER], desk=desk)


def seed_template() -> None:
    """The seed, in a database where no library records ``Model`` (pghistory's triggers,
    which ``create_benchmark_tables`` has just installed with every other, are taken out)."""
    from benchmarks.benchapp import service_history

    service_history.remove_triggers()
    seed()


def variants_supported() -> tuple[str, ...]:
    from django.conf import settings

    return VARIANTS if settings.BENCH_POSTGRES else tuple(v for v in VARIANTS if v != "pghistory")


@contextmanager
def audit_log_taken_out() -> Iterator[None]:
    """``record_event`` as seen by the services, minus the log: the guard is told, nothing written."""
    from audit import scope
    from models_registry import services

    def note_only(
        *, actor: Any, action: str, target: Any = None, object_type: Any = None, object_id: Any = None, **_: Any
    ) -> None:
        label = object_type or target._meta.label_lower
        scope.note_audited(label, object_id if object_id is not None else target.pk)

    original = services.record_event
    services.record_event = note_only
    try:
        yield
    finally:
        services.record_event = original


@contextmanager
def recording(variant: str) -> Iterator[None]:
    """What records the history during ``variant``: our audit log, nothing, or a library."""
    from benchmarks.benchapp import service_history

    if variant == "audited":
        yield
        return
    with audit_log_taken_out():
        if variant == "unaudited":
            yield
        else:
            with service_history.recording(variant):
                yield


def actor_context(variant: str) -> Callable[[Any], AbstractContextManager[Any]]:
    """Around each service call: how the variant's library learns the actor (ours: from the call)."""
    from benchmarks.benchapp import service_history

    if variant in LIBRARIES:
        return lambda user: service_history.as_actor(variant, user)
    return lambda user: nullcontext()


def history_rows() -> dict[str, int]:
    """Rows in every history store: our events and tree nodes, and each library's rows of ``Model``."""
    from audit.models import Event, TreeNode
    from benchmarks.benchapp import service_history

    return {"events": Event.objects.count(), "tree_nodes": TreeNode.objects.count(), **service_history.history_rows()}


def _create(owner: Any, desk: Any, name: str, i: int) -> Any:
    from models_registry import services

    return services.model_create(
        actor=owner,
        name=name,
        purpose="alpha",
        desk=desk,
        owner=owner,
        model_type="logistic_regression",
        materiality=Decimal(1_000_000 + i).quantize(Decimal("0.01")),
        description=f"Intraday direction model {i} for liquid equities, retrained weekly.",
        objectives="Predict the sign of the next 30-minute return.",
        success_criteria="Hit rate above 52% out of sample over 6 months.",
        constraints="Liquid names only; no overnight positions.",
    )


def _update(owner: Any, model: Any, revision: int) -> Any:
    from models_registry import services

    return services.model_update(
        actor=owner,
        model=model,
        changes={
            "description": f"Intraday direction model, revision {revision}.",
            "materiality": (model.materiality + 1).quantize(Decimal("0.01")),
        },
    )


def _run_variant(variant: str, n: int, count_ops: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from governance.models import Desk

    owner = get_user_model().objects.get(username=OWNER)
    desk = Desk.objects.get(code=DESK)
    as_actor = actor_context(variant)

    def create(name: str, i: int) -> Any:
        with as_actor(owner):
            return _create(owner, desk, name, i)

    def update(model: Any, revision: int) -> Any:
        with as_actor(owner):
            return _update(owner, model, revision)

    rows_before = history_rows()
    out: dict[str, Any] = {"create_wall": [], "create_cpu": [], "update_wall": [], "update_cpu": []}
    with recording(variant):
        with timed(out["create_wall"], out["create_cpu"]):
            models = [create(f"{variant}-{i:06d}", i) for i in range(n)]
        with timed(out["update_wall"], out["update_cpu"]):
            for revision, model in enumerate(models, start=1):
                update(model, revision)
        # Counted apart from the timed loops: capturing queries slows them down.
        extra = [create(f"{variant}-extra-{i:06d}", n + i) for i in range(count_ops)]
        out["create_queries"] = count_queries(lambda: create(f"{variant}-counted", 2 * n))
        out["update_queries"] = count_queries(lambda: update(extra[0], n + 1))
    writes = 2 * n + count_ops + 2
    rows_after = history_rows()
    out["history_rows"] = {store: (rows_after[store] - rows_before[store]) / writes for store in rows_after}
    out["history_rows_per_write"] = sum(out["history_rows"].values())
    out["events_per_write"] = out["history_rows"]["events"]
    return {key: value[0] if isinstance(value, list) else value for key, value in out.items()}


def _run_variant_in_child(variant: str, n: int, count_ops: int) -> dict[str, Any]:
    """``_run_variant`` in a process of its own, forked from this one before any variant ran.

    Run one after another in one process, the same variant was 5-14% slower in a later
    position than in an earlier one (what earlier variants leave behind in the process), so
    every variant now starts from the same process state, whatever its place in the order.
    """
    from django.db import connections

    connections.close_all()  # the child opens its own connection to the fresh copy
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(_run_variant, (variant, n, count_ops))


def run(args: argparse.Namespace) -> dict[str, Any]:
    fresh = FreshDatabase()
    fresh.prepare(seed_template)
    names = list(args.only)
    result: dict[str, Any] = {"environment": environment(), "n": args.n, "variants": names, "repetitions": []}
    for repetition in range(args.repeat):
        order = names[repetition % len(names) :] + names[: repetition % len(names)]
        rep: dict[str, Any] = {"order": order, "load": {}}
        for variant in order:
            fresh.restore()
            rep["load"][variant] = os.getloadavg()[0]
            rep[variant] = _run_variant_in_child(variant, args.n, args.count_ops)
            print(f"repetition {repetition + 1} {variant}: {json.dumps(rep[variant])}", flush=True)
        result["repetitions"].append(rep)
        if args.json:
            # After every repetition, so that an interrupted run still leaves its numbers.
            args.json.write_text(json.dumps(result, indent=2))
    return result


def _rows_per_write(run: dict[str, Any]) -> float:
    # Results saved before the library variants counted our events only.
    return run.get("history_rows_per_write", run["events_per_write"])


def report(result: dict[str, Any]) -> str:
    n = result["n"]
    reps = result["repetitions"]
    variants = [v for v in VARIANTS if v in reps[0]]
    lines = [
        f"{n:,} creates and {n:,} updates per variant, {len(reps)} repetition(s); "
        "ratio = variant / unaudited within a repetition, median (best)",
        "",
        "| workload | variant | wall s, best / median | ms/write (median) | x unaudited wall | "
        "CPU µs/write (median) | x unaudited CPU | queries/write | history rows/write |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload in ("create", "update"):
        for variant in variants:
            walls = [rep[variant][f"{workload}_wall"] for rep in reps]
            cpus = [rep[variant][f"{workload}_cpu"] for rep in reps]
            ratio = cpu_ratio = "-"
            if variant != "unaudited" and "unaudited" in variants:
                wall_ratios = [rep[variant][f"{workload}_wall"] / rep["unaudited"][f"{workload}_wall"] for rep in reps]
                cpu_ratios = [rep[variant][f"{workload}_cpu"] / rep["unaudited"][f"{workload}_cpu"] for rep in reps]
                ratio = f"{statistics.median(wall_ratios):.2f} ({min(wall_ratios):.2f})"
                cpu_ratio = f"{statistics.median(cpu_ratios):.2f} ({min(cpu_ratios):.2f})"
            lines.append(
                f"| {workload}s | `{variant}` | {min(walls):.2f} / {statistics.median(walls):.2f} | "
                f"{statistics.median(walls) / n * 1000:.3f} | {ratio} | {statistics.median(cpus) / n * 1e6:,.0f} | "
                f"{cpu_ratio} | {reps[-1][variant][f'{workload}_queries']} | "
                f"{_rows_per_write(reps[-1][variant]):.2f} |"
            )
    lines.append("")
    for variant in variants:
        stores = reps[-1][variant].get("history_rows", {"events": reps[-1][variant]["events_per_write"]})
        written = " + ".join(f"{per_write:.2f} {store}" for store, per_write in stores.items() if per_write) or "none"
        lines.append(f"- `{variant}`: {RECORDS[variant]} (rows/write: {written})")
    loads = [load for rep in reps for load in rep["load"].values()]
    lines.append("")
    lines.append(f"load average (1 min) at the start of each variant: {min(loads):.2f}-{max(loads):.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_database_arguments(parser, default_name="bench_write_service")
    parser.add_argument("--n", type=int, default=10_000, help="creates, then as many updates, per variant")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count-ops", type=int, default=16, help="extra creates before counting queries")
    parser.add_argument(
        "--only", nargs="+", choices=VARIANTS, help="variants to run (default: all the database supports)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here (after every repetition)")
    parser.add_argument("--report", type=Path, help="only print the table of results saved with --json")
    args = parser.parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    # The libraries' history models of models_registry.Model (benchmarks/benchapp/service_history.py).
    os.environ["BENCH_SERVICE_HISTORY"] = "1"
    setup_django(args)
    supported = variants_supported()
    unsupported = sorted(set(args.only or ()) - set(supported))
    if unsupported:
        parser.error(f"not on this database: {', '.join(unsupported)} (pghistory needs PostgreSQL)")
    args.only = [v for v in supported if v in args.only] if args.only else list(supported)
    result = run(args)
    print(json.dumps(result["environment"], indent=2))
    print(report(result))


if __name__ == "__main__":
    main()
