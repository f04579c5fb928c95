"""Monitoring ingest speed (issue 8): >= 5,000 samples/s into PostgreSQL through the API, in batches of 500.

    .venv/bin/python benchmarks/monitoring_ingest.py [--database-url postgres://postgres@127.0.0.1:5432/bench_ingest]
        [--batches 40] [--batch-size 500] [--runs 3] [--json FILE]

Drops and recreates the database named in the URL (its own, never the test database),
migrates it, and sets up through the services a desk, a model owner, a trading-system
service account with a desk grant and an API token, and a model with one version. The
version's deployment is written directly inside an audited change with its event
(``benchmark.deployment_forced``): a real one needs the whole sign-off workflow, which is not
what is measured.

Each run posts ``--batches`` batches of ``--batch-size`` samples to
``POST /api/monitoring/<model>/samples`` with Django's test ``Client`` in this process: the
whole request path (middleware, knox token authentication, the JSON parser, the view, the
service's validation, ``bulk_create``, the audit event, the commit) without the HTTP socket
(which a production WSGI server adds outside Django). The JSON bodies are encoded before the
clock starts, as a sender would have them ready. Every response must be 201. Samples have
every field (features: 8 numbers), as in docs/monitoring.md.

Prints per run: samples/s by wall clock, the CPU seconds of this process and of the
PostgreSQL backend serving it (from /proc, same machine), and the load average; then a JSON
summary with the best and the median of the runs against the target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGET = 5000.0
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_ingest"


def _configure(url: str, broker: str) -> None:
    name = url.rsplit("/", 1)[-1]
    if not url.startswith("postgres") or not name or name.startswith("test") or name in ("postgres", "governance"):
        raise SystemExit(f"refusing to drop {name!r}: give a PostgreSQL database of the benchmark's own")
    bench = ROOT / "var" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-0000000000")
    os.environ["DJANGO_DEBUG"] = "false"  # production settings: no query log
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ["GOVERNANCE_VAR_DIR"] = str(bench / "monitoring_ingest")
    os.environ["DATABASE_URL"] = url
    # With a broker, the after-ingest hooks (the anomaly evaluation) are queued as in
    # production, not run in the request as Celery's eager mode would.
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    else:
        os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "governance.settings"
    import django

    django.setup()


def _recreate_database() -> None:
    import psycopg
    from django.db import connection

    settings_dict = connection.settings_dict
    connection.close()
    with psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"] or "postgres",
        password=settings_dict["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{settings_dict["NAME"]}"')
        admin.execute(f'CREATE DATABASE "{settings_dict["NAME"]}"')


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (utime and stime, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _setup() -> tuple[Any, str]:
    from django.core.management import call_command
    from django.utils import timezone

    from audit.scope import audited_change
    from audit.services import SystemActor, record_event
    from governance import services as org
    from governance.models import Deployment
    from governance.roles import Role
    from models_registry import services as registry
    from tests.factories import skops_classifier_bytes

    call_command("migrate", interactive=False, verbosity=0)
    system = SystemActor("benchmark")
    desk = org.desk_create(actor=system, code="bench", name="Benchmark desk")
    password = "benchmark-password-0123456789"
    owner = org.user_create(actor=system, username="owner", password=password, roles=[Role.MODEL_OWNER], desk=desk)
    gateway = org.user_create(actor=system, username="gateway", password=password, roles=[Role.TRADING_SYSTEM])
    org.desk_access_grant(actor=system, user=gateway, desk=desk, permission="view_desk_models")
    _, token = org.token_issue(actor=system, user=gateway)
    model = registry.model_create(
        actor=owner,
        name="bench-live",
        purpose="alpha",
        desk=desk,
        owner=owner,
        model_type="logistic_regression",
        materiality="1000000.00",
    )
    artifact = skops_classifier_bytes()
    version = registry.model_version_create(actor=owner, model=model, version="1.0.0", artifact=artifact)
    now = timezone.now()
    with audited_change():
        deployment = Deployment.objects.create(
            model=model,
            version=version,
            phase="shadow",
            phase_started_at=now,
            capital_limit="5000000.00",
            currency="USD",
            instruments=["NVDA"],
            rollback_plan="benchmark",
            started_at=now,
        )
        record_event(actor=system, action="benchmark.deployment_forced", target=deployment)
    return model, token


def _bodies(run: int, batches: int, size: int, start: dt.datetime) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(run)
    bodies = []
    step = dt.timedelta(milliseconds=10)
    for b in range(batches):
        first = start + (b * size) * step
        probability = rng.random(size)
        outcome = rng.integers(0, 2, size)
        pnl = rng.normal(0, 250, size)
        features = rng.normal(0, 1, (size, 8))
        samples = [
            {
                "at": (first + i * step).isoformat().replace("+00:00", "Z"),
                "instrument": "NVDA",
                "predicted": int(probability[i] > 0.5),
                "probability": round(float(probability[i]), 6),
                "outcome": int(outcome[i]),
                "trade_count": int(i % 4),
                "pnl": f"{pnl[i]:.2f}",
                "pnl_kind": "trade",
                "features": {f"f{k}": round(float(features[i, k]), 6) for k in range(8)},
            }
            for i in range(size)
        ]
        bodies.append(json.dumps({"batch_id": f"run{run}-batch{b:05d}", "samples": samples}))
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument(
        "--broker-url",
        default="redis://127.0.0.1:6379/14",
        help="Celery broker for the after-ingest hooks (its queue is purged at the end); '' runs them eagerly",
    )
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=str, default="")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one run instead")
    args = parser.parse_args()
    _configure(args.database_url, args.broker_url)
    _recreate_database()

    from checks_common import machine
    from django.db import connection
    from django.test import Client

    from governance import monitoring_services
    from governance.models import MonitoringSample

    before = machine()
    model, token = _setup()
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    url = f"/api/monitoring/{model.pk}/samples"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    # One small batch first, so imports, caches and the connection are warm.
    warm = _bodies(99, 1, 10, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))[0]
    warm_response = client.post(url, warm, content_type="application/json", secure=True)
    if warm_response.status_code != 201:
        raise SystemExit(f"warm-up refused: {warm_response.status_code} {warm_response.content[:500]!r}")

    runs = []
    start = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    if args.profile:
        import cProfile
        import pstats

        bodies = _bodies(0, args.batches, args.batch_size, start)
        profiler = cProfile.Profile()
        profiler.enable()
        for body in bodies:
            client.post(url, body, content_type="application/json", secure=True)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(45)
        return
    for run in range(args.runs):
        bodies = _bodies(run, args.batches, args.batch_size, start)
        start += dt.timedelta(days=1)
        load = os.getloadavg()[0]
        wall0, cpu0, server0 = time.perf_counter(), time.process_time(), _cpu_seconds(backend)
        for body in bodies:
            response = client.post(url, body, content_type="application/json", secure=True)
            if response.status_code != 201:
                raise SystemExit(f"batch refused: {response.status_code} {response.content[:500]!r}")
        wall = time.perf_counter() - wall0
        cpu, server = time.process_time() - cpu0, _cpu_seconds(backend) - server0
        n = args.batches * args.batch_size
        result = {
            "samples": n,
            "wall_s": round(wall, 3),
            "samples_per_s_wall": round(n / wall),
            "cpu_s_client_and_django": round(cpu, 3),
            "cpu_s_postgres_backend": round(server, 3),
            "samples_per_cpu_s": round(n / (cpu + server)),
            "load_average_before": round(load, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
        }
        runs.append(result)
        print(
            f"run {run + 1}: {n} samples in {wall:.2f} s = {result['samples_per_s_wall']} samples/s wall; CPU "
            f"{cpu:.2f} s here + {server:.2f} s PostgreSQL = {result['samples_per_cpu_s']} samples per CPU-s; "
            f"load {load:.2f} -> {result['load_average_after']:.2f}",
            file=sys.stderr,
            flush=True,
        )
    stored = MonitoringSample.objects.count()
    hooks = [getattr(h, "__qualname__", repr(h)) for h in monitoring_services.after_ingest_hooks]
    if args.broker_url:
        from governance.celery import app as celery_app

        celery_app.control.purge()  # the evaluations queued by the hooks: no worker runs them here
    expected = 10 + args.runs * args.batches * args.batch_size
    walls = [r["samples_per_s_wall"] for r in runs]
    cpus = [r["samples_per_cpu_s"] for r in runs]
    report = {
        "target_samples_per_s": TARGET,
        "method": "Django test Client in-process, knox token, POST /api/monitoring/<model>/samples, PostgreSQL",
        "batch_size": args.batch_size,
        "batches_per_run": args.batches,
        "database": args.database_url.rsplit("/", 1)[-1],
        "after_ingest_hooks": hooks,
        "broker": args.broker_url or "none (hooks run eagerly in the request)",
        "stored_samples_check": stored == expected,
        "runs": runs,
        "best_samples_per_s_wall": max(walls),
        "median_samples_per_s_wall": statistics.median(walls),
        "best_samples_per_cpu_s": max(cpus),
        "median_samples_per_cpu_s": statistics.median(cpus),
        "machine": before,
        "load_average_after": machine()["load_average"],
        "met": statistics.median(walls) >= TARGET,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        (ROOT / args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
