"""Audited write overhead through the product's own services: N ``model_create`` and N
``model_update`` calls (models_registry.services), with the audit log and without it.

``audit_write.py`` compares a bare model write with the same write plus ``record_event``
(and with the history libraries). This script measures what the issue's words name, "a
governed object through services, with the audit log vs without": the same service calls,
by a model owner on their desk (as the API makes them: permission and scope checks,
``full_clean``, the write, the visibility check), once as the product runs them and once
with the audit log taken out:

* ``audited``: the services as they are;
* ``unaudited``: ``record_event`` replaced by a function that only tells the governed-write
  guard that the row's event was written (so the guard, which would otherwise refuse the
  write, passes) and writes nothing: no event, no tree node, no head update, no canonical
  text or hashes. The snapshots the services take before calling ``record_event`` stay
  (``model_update`` compares them to skip a write that changes nothing), so this baseline
  keeps about 40-50 µs per write of work that only the audit needs.

Each call is its own transaction (the service's). Every variant of every repetition starts
from the same fresh database (the same migrated template: its audit log holds the
migrations' and the seed's events), in a rotated order; ratios are taken within a
repetition.

    .venv/bin/python benchmarks/audit_write_service.py --db sqlite --n 10000 --repeat 3
    .venv/bin/python benchmarks/audit_write_service.py --db postgres --n 10000 --repeat 3

Results and method: docs/benchmarks.md ("Audited writes through the services").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

VARIANTS = ("unaudited", "audited")
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

    from audit.models import Event
    from governance.models import Desk

    owner = get_user_model().objects.get(username=OWNER)
    desk = Desk.objects.get(code=DESK)
    wrap: Callable[[], Any] = audit_log_taken_out if variant == "unaudited" else _no_change
    events_before = Event.objects.count()
    out: dict[str, Any] = {"create_wall": [], "create_cpu": [], "update_wall": [], "update_cpu": []}
    with wrap():
        with timed(out["create_wall"], out["create_cpu"]):
            models = [_create(owner, desk, f"{variant}-{i:06d}", i) for i in range(n)]
        with timed(out["update_wall"], out["update_cpu"]):
            for revision, model in enumerate(models, start=1):
                _update(owner, model, revision)
        extra = [_create(owner, desk, f"{variant}-extra-{i:06d}", n + i) for i in range(count_ops)]
        out["create_queries"] = count_queries(lambda: _create(owner, desk, f"{variant}-counted", 2 * n))
        out["update_queries"] = count_queries(lambda: _update(owner, extra[0], n + 1))
    out["events_per_write"] = (Event.objects.count() - events_before) / (2 * n + count_ops + 2)
    return {key: value[0] if isinstance(value, list) else value for key, value in out.items()}


@contextmanager
def _no_change() -> Iterator[None]:
    yield


def run(args: argparse.Namespace) -> dict[str, Any]:
    import time

    fresh = FreshDatabase()
    fresh.prepare(seed)
    result: dict[str, Any] = {"environment": environment(), "n": args.n, "repetitions": []}
    for repetition in range(args.repeat):
        order = list(VARIANTS[repetition % 2 :] + VARIANTS[: repetition % 2])
        rep: dict[str, Any] = {"order": order, "load": {}}
        for variant in order:
            fresh.restore()
            rep["load"][variant] = os.getloadavg()[0]
            rep[variant] = _run_variant(variant, args.n, args.count_ops)
            print(f"repetition {repetition + 1} {variant}: {json.dumps(rep[variant])}", flush=True)
        result["repetitions"].append(rep)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        time.sleep(0)
    return result


def report(result: dict[str, Any]) -> str:
    n = result["n"]
    reps = result["repetitions"]
    lines = [
        f"{n:,} creates and {n:,} updates per variant, {len(reps)} repetition(s); "
        "ratio = audited / unaudited within a repetition, median (best)",
        "",
        "| workload | variant | wall s, best / median | ms/write (median) | x unaudited wall | "
        "CPU µs/write (median) | x unaudited CPU | queries/write | events/write |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload in ("create", "update"):
        for variant in VARIANTS:
            walls = [rep[variant][f"{workload}_wall"] for rep in reps]
            cpus = [rep[variant][f"{workload}_cpu"] for rep in reps]
            wall_ratios = [rep[variant][f"{workload}_wall"] / rep["unaudited"][f"{workload}_wall"] for rep in reps]
            cpu_ratios = [rep[variant][f"{workload}_cpu"] / rep["unaudited"][f"{workload}_cpu"] for rep in reps]
            ratio = (
                "-" if variant == "unaudited" else (f"{statistics.median(wall_ratios):.2f} ({min(wall_ratios):.2f})")
            )
            cpu_ratio = (
                "-" if variant == "unaudited" else (f"{statistics.median(cpu_ratios):.2f} ({min(cpu_ratios):.2f})")
            )
            lines.append(
                f"| {workload}s | `{variant}` | {min(walls):.2f} / {statistics.median(walls):.2f} | "
                f"{statistics.median(walls) / n * 1000:.3f} | {ratio} | {statistics.median(cpus) / n * 1e6:,.0f} | "
                f"{cpu_ratio} | {reps[-1][variant][f'{workload}_queries']} | "
                f"{reps[-1][variant]['events_per_write']:.2f} |"
            )
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
    parser.add_argument("--json", type=Path, help="also write the raw results here (after every repetition)")
    parser.add_argument("--report", type=Path, help="only print the table of results saved with --json")
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
