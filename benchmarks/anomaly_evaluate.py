"""Cost of one evaluation of the anomaly rules (issue 8) as a deployment's history grows.

    .venv/bin/python benchmarks/anomaly_evaluate.py [--database-url postgres://postgres@127.0.0.1:5432/bench_anomaly]
        [--sizes 10000 50000 100000] [--runs 3] [--per-day 200] [--json FILE]

No target in the issue: this measures what docs/anomaly-rules.md ("Limits") says, that an
evaluation reads the deployment's whole history, so its cost grows with it. Without
``--database-url`` it uses SQLite under var/bench/anomaly_evaluate/ (recreated); with one, it
drops and recreates that PostgreSQL database (its own, never the test database).

Set-up through the services: a desk, a model owner, a compliance officer who activates the
shipped policy set, a model with one version; the deployment is written directly inside an
audited change with its event (``benchmark.deployment_forced``, as benchmarks/monitoring_ingest.py
does: a real one needs the whole sign-off workflow), with the per-model override
``accuracy.baseline = 0.55``. Samples are ingested with ``monitoring_ingest`` (the after-ingest
hooks switched off, so that nothing is evaluated during the set-up), ``--per-day`` a day ending
now, each with a prediction right with probability 0.55, one trade with a P&L of +/-100.00 and 8
features: a clean stream, so every rule is computed and none fires.

For each size (cumulative: the history grows to it), ``--runs`` evaluations with
``anomaly_services.monitoring_evaluate`` as ``system:monitoring``: the reads and the detectors
(``monitoring_section``, timed apart), the policy decision stored with its audit event, the
commit. Prints per run the wall time, the CPU of this process and (PostgreSQL) of its server
backend, then a JSON summary (median per size), with the machine and the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _configure(url: str | None) -> None:
    bench = ROOT / "var" / "bench" / "anomaly_evaluate"
    if url:
        name = url.rsplit("/", 1)[-1]
        if not url.startswith("postgres") or not name or name.startswith("test") or name in ("postgres", "test"):
            raise SystemExit(f"refusing to drop {name!r}: give a PostgreSQL database of the benchmark's own")
        os.environ["DATABASE_URL"] = url
    else:
        shutil.rmtree(bench, ignore_errors=True)
        bench.mkdir(parents=True, exist_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{bench / 'db.sqlite3'}"
    bench.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-0000000000")
    os.environ["DJANGO_DEBUG"] = "false"  # production settings: no query log
    os.environ["GOVERNANCE_VAR_DIR"] = str(bench)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "governance.settings"
    import django

    django.setup()


def _recreate_postgres() -> None:
    import psycopg
    from django.db import connection

    settings_dict = connection.settings_dict
    connection.close()
    with psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"] or "postgres",
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{settings_dict["NAME"]}"')
        admin.execute(f'CREATE DATABASE "{settings_dict["NAME"]}"')


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _setup() -> Any:
    from django.core.management import call_command
    from django.utils import timezone

    from audit.scope import audited_change
    from audit.services import SystemActor, record_event
    from governance import monitoring_services
    from governance import services as org
    from governance.models import Deployment
    from governance.roles import Role
    from models_registry import services as registry
    from tests.factories import skops_classifier_bytes

    call_command("migrate", interactive=False, verbosity=0)
    monitoring_services.after_ingest_hooks.clear()  # nothing is evaluated while the history is built
    system = SystemActor("benchmark")
    desk = org.desk_create(actor=system, code="bench", name="Benchmark desk")
    password = "benchmark-password-0123456789"
    owner = org.user_create(actor=system, username="owner", password=password, roles=[Role.MODEL_OWNER], desk=desk)
    officer = org.user_create(actor=system, username="chloe", password=password, roles=[Role.COMPLIANCE_OFFICER])
    org.policy_set_activate(actor=officer)
    model = registry.model_create(
        actor=owner,
        name="bench-anomaly",
        purpose="alpha",
        desk=desk,
        owner=owner,
        model_type="logistic_regression",
        materiality="1000000.00",
    )
    version = registry.model_version_create(
        actor=owner, model=model, version="1.0.0", artifact=skops_classifier_bytes()
    )
    now = timezone.now()
    with audited_change():
        deployment = Deployment.objects.create(
            model=model,
            version=version,
            phase="shadow",
            phase_started_at=now - dt.timedelta(days=3650),
            capital_limit="5000000.00",
            currency="USD",
            instruments=["NVDA"],
            max_daily_loss="100000.00",
            rollback_plan="benchmark",
            started_at=now - dt.timedelta(days=3650),
            monitoring_parameters={"accuracy": {"baseline": 0.55}},
        )
        record_event(actor=system, action="benchmark.deployment_forced", target=deployment)
    return owner, model, deployment


def _samples(start: int, stop: int, *, per_day: int, first: dt.datetime) -> list[dict[str, Any]]:
    import numpy as np

    rng = np.random.default_rng(start)
    out = []
    step = dt.timedelta(seconds=max(1, 6 * 3600 // per_day))
    for i in range(start, stop):
        at = first + dt.timedelta(days=i // per_day) + step * (i % per_day)
        predicted = int(rng.integers(0, 2))
        right = bool(rng.random() < 0.55)
        out.append(
            {
                "at": at.isoformat(),
                "instrument": "NVDA",
                "predicted": predicted,
                "outcome": predicted if right else 1 - predicted,
                "probability": 0.55,
                "trade_count": 1,
                "pnl": "100.00" if right else "-100.00",
                "pnl_kind": "trade",
                "features": {f"f{k}": float(rng.normal()) for k in range(8)},
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000, 100000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-day", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    _configure(args.database_url)
    if args.database_url:
        _recreate_postgres()

    from django.db import connection, reset_queries
    from django.utils import timezone

    from governance import anomaly_services, monitoring_services
    from governance.policy import store as policy_store

    owner, model, deployment = _setup()
    sizes = sorted(args.sizes)
    days = sizes[-1] // args.per_day + 2
    first = (timezone.now() - dt.timedelta(days=days)).replace(hour=8, minute=0, second=0, microsecond=0)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}")
    print(f"database: {connection.vendor}; load average at start: {os.getloadavg()}")
    results: dict[str, Any] = {"database": connection.vendor, "per_day": args.per_day, "sizes": {}}
    have = 0
    for size in sizes:
        built = time.perf_counter()
        while have < size:
            stop = min(size, have + 5000)
            monitoring_services.monitoring_ingest(
                actor=owner,
                model=model,
                batch_id=f"b{have}",
                samples=_samples(have, stop, per_day=args.per_day, first=first),
            )
            have = stop
        print(f"\n{size:,} samples ({size // args.per_day:,} days) ingested in {time.perf_counter() - built:.1f} s")
        runs = []
        for run in range(args.runs):
            backend = _backend_pid()
            start = time.perf_counter()
            parameters = anomaly_services.effective_parameters(policy_store.require_active_policy_set()[1], deployment)
            anomaly_services.monitoring_section(deployment=deployment, parameters=parameters)
            section = time.perf_counter() - start
            cpu0, db0 = _cpu_seconds(os.getpid()), _cpu_seconds(backend) if backend else 0.0
            start = time.perf_counter()
            alerts = anomaly_services.monitoring_evaluate(actor=anomaly_services.MONITORING, deployment=deployment)
            wall = time.perf_counter() - start
            cpu = _cpu_seconds(os.getpid()) - cpu0
            db = (_cpu_seconds(backend) - db0) if backend else None
            reset_queries()
            runs.append({"wall_s": wall, "section_s": section, "cpu_s": cpu, "db_cpu_s": db, "alerts": len(alerts)})
            backend_cpu = f", PostgreSQL backend {db:.2f} s" if db is not None else ""
            print(
                f"  run {run + 1}: evaluate {wall * 1000:.0f} ms wall, CPU {cpu:.2f} s{backend_cpu} "
                f"(reads and detectors alone {section * 1000:.0f} ms); alerts {len(alerts)}; "
                f"load {os.getloadavg()[0]:.2f}"
            )
        results["sizes"][str(size)] = {
            "median_evaluate_ms": statistics.median(r["wall_s"] for r in runs) * 1000,
            "median_section_ms": statistics.median(r["section_s"] for r in runs) * 1000,
            "runs": runs,
        }
    results["load_average_end"] = os.getloadavg()
    print("\n" + json.dumps(results, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
