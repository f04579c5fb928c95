"""Trading permission under load (issue 8): GET /api/deployments/<model>/permission p95 <= 5 ms
under 50 concurrent clients, load from a second process on 127.0.0.1.

    .venv/bin/pip install -e '.[bench]'      # gunicorn
    .venv/bin/python benchmarks/permission_load.py [--database-url postgres://postgres@127.0.0.1:5432/bench_permission]
        [--cache-url redis://127.0.0.1:6379/13] [--clients 50] [--rates 2,5,10,20] [--duration 20]
        [--closed 1,2,5,10,25,50] [--closed-duration 8] [--models 10] [--workers 4] [--threads 2]
        [--json FILE]

Three processes on this machine:

* the **server**: gunicorn (``governance.wsgi``, gthread workers: ``--workers`` processes of
  ``--threads`` threads), production settings (DEBUG off, no query log), PostgreSQL with
  persistent connections (``DB_CONN_MAX_AGE=600``), the shared Redis cache (``CACHE_URL``) and
  the default permission TTL (``GOVERNANCE_TRADING_PERMISSION_TTL``: 60 s with the shared cache);
* the **load generator**: this script again (``--role load``), a second process: one asyncio
  event loop with ``--clients`` HTTP/1.1 keep-alive connections, each sending the request and
  reading the whole answer before the next (one request in flight per connection, as a
  gateway thread with its own connection); each connection is opened and served one request
  (not counted) before the run starts, as a gateway's pooled connections are. Every request
  carries ``Authorization: Token`` of a service account with the role *trading system* (knox
  token, like production), and asks about one of ``--models`` deployed models in turn;
* the **driver** (this process): recreates the database named in ``--database-url`` (its own,
  never the test database), migrates it, sets up through the services a desk, a model owner,
  the service account with a desk grant and its API token, and ``--models`` models with one
  version each. The versions' deployments (and their ``deployed`` status) are written directly
  inside an audited change with their event (``benchmark.deployment_forced``): the sign-off
  workflow that normally opens them is not what is measured. It flushes the Redis database
  of ``--cache-url`` (its own) and starts the server.

The load, precisely:

1. **open loop** (fixed rate), for each per-client rate in ``--rates``: every client sends at
   ``rate`` requests/s on a fixed schedule (a random phase per client, then every
   ``1/rate`` s), so the total is ``clients x rate`` requests/s whatever the answers' speed.
   Latency is measured two ways: *service* (from the moment the request is written to the
   moment its last byte is read) and *from schedule* (from the moment it was due: when the
   server falls behind, a client sends late and this counts the wait, so a slow server cannot
   hide behind fewer requests, the "coordinated omission" of closed-loop tools);
2. **kill switch** during the last open-loop run: at its middle the driver pulls the kill
   switch of the first model through ``services.kill_switch_engage`` (as a system actor,
   like a monitoring job) and records when it committed; every answer about that model
   received later than the commit plus the TTL must say not allowed (with Redis, from the
   commit on), and the report gives when the last "allowed" answer and the first "not
   allowed" one about it were received, relative to the commit;
3. **closed loop** (saturation), for each number of clients in ``--closed``: every client
   sends its next request as soon as the previous answer has arrived, to show the
   throughput the server sustains and where latency turns up (the knee).

Every answer is checked: status 200 and exactly the expected JSON (allowed, version, phase,
capital limit, currency, instruments, reason) for its model at that moment; anything else is
counted as an error. Printed per run: requests/s offered and achieved, p50/p95/p99/max (ms),
errors, the CPU seconds of the server's workers and of the load generator, and the load
average; then a JSON summary (``--json`` writes it to a file too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGET_P95_MS = 5.0
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_permission"
DEFAULT_CACHE = "redis://127.0.0.1:6379/13"
SECRET = "benchmark-only-secret-key-not-for-production-0000000000"


# The load generator (second process) -----------------------------------------------------


async def _client(
    host: str,
    port: int,
    requests: Iterator[tuple[float, bytes, int]],
    out: list[tuple[int, float, float, float, float, int, bytes]],
    start: float,
    deadline: float,
    warm: bytes,
) -> None:
    """Send ``requests`` (due time on perf_counter, request bytes, model index) over one
    keep-alive connection, one at a time; append (model, due, sent, received, sent wall time,
    status, body) per answer. A due time of 0 means "as soon as the previous answer arrived"."""
    reader, writer = await asyncio.open_connection(host, port)
    loop_time = time.perf_counter

    async def exchange(payload: bytes) -> tuple[int, bytes]:
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(head[9:12]), await reader.readexactly(length)

    # One request first, not counted: the connection is established and served once, as a
    # gateway's pooled connection would be. (A new connection that stays silent until its
    # first due time holds a gunicorn thread while it waits for data, which delayed the
    # others by up to 1.7 s at the start of a run: an artefact of the benchmark, not a cost
    # of the permission.)
    await exchange(warm)
    await asyncio.sleep(max(0.0, start - loop_time()))
    for due, payload, model in requests:
        if due:
            delay = due - loop_time()
            if delay > 0:
                await asyncio.sleep(delay)
        elif loop_time() >= deadline:
            break
        sent, sent_wall = loop_time(), time.time()
        status, body = await exchange(payload)
        out.append((model, due, sent, loop_time(), sent_wall, status, body))
    writer.close()


def _request(path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Accept: application/json\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    clients, rate, duration = spec["clients"], spec["rate"], spec["duration"]
    paths = [_request(f"/api/deployments/{pk}/permission", spec["token"]) for pk in spec["models"]]
    start = time.perf_counter() + 1.0  # connections open and are served once first
    deadline = start + duration
    rng = random.Random(spec["seed"])

    def plan(c: int, phase: float) -> Iterator[tuple[float, bytes, int]]:
        # Client c asks about the models in turn, starting with model c.
        i = 0
        while not rate or i < int(duration * rate):
            model = (c + i) % len(paths)
            yield (start + phase + i / rate if rate else 0.0), paths[model], model
            i += 1

    plans = [plan(c, rng.random() / rate if rate else 0.0) for c in range(clients)]
    results: list[list[Any]] = [[] for _ in range(clients)]
    cpu = time.process_time()
    await asyncio.gather(
        *(
            _client(spec["host"], spec["port"], plans[c], results[c], start, deadline, paths[c % len(paths)])
            for c in range(clients)
        )
    )
    ended = time.perf_counter()
    return {
        "started": start,
        "ended": ended,
        "cpu_seconds": time.process_time() - cpu,
        "results": [
            [m, due, sent, rec, wall, status, body.decode()]
            for rows in results
            for (m, due, sent, rec, wall, status, body) in rows
        ],
    }


def load_main(spec_file: str, out_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    Path(out_file).write_text(json.dumps(asyncio.run(_load(spec))))


# The driver ----------------------------------------------------------------------------


def _configure(url: str, cache_url: str) -> dict[str, str]:
    name = url.rsplit("/", 1)[-1]
    if not url.startswith("postgres") or not name or name.startswith("test") or name in ("postgres", "governance"):
        raise SystemExit(f"refusing to drop {name!r}: give a PostgreSQL database of the benchmark's own")
    bench = ROOT / "var" / "bench" / "permission_load"
    bench.mkdir(parents=True, exist_ok=True)
    env = {
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", SECRET),
        "DJANGO_DEBUG": "false",  # production settings: no query log
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on 127.0.0.1 (a proxy terminates TLS in production)
        "GOVERNANCE_VAR_DIR": str(bench),
        "DATABASE_URL": url,
        "DB_CONN_MAX_AGE": "600",
        "CACHE_URL": cache_url,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "governance.settings",
    }
    os.environ.update(env)
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    return env


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


def _setup(n_models: int) -> tuple[list[Any], str]:
    from django.core.management import call_command
    from django.utils import timezone

    from audit.scope import audited_change
    from audit.services import SystemActor, record_event
    from governance import services as org
    from governance.models import Deployment
    from governance.roles import Role
    from models_registry import services as registry
    from models_registry.models import ModelVersion
    from tests.factories import skops_classifier_bytes

    call_command("migrate", interactive=False, verbosity=0)
    system = SystemActor("benchmark")
    desk = org.desk_create(actor=system, code="bench", name="Benchmark desk")
    password = "benchmark-password-0123456789"
    owner = org.user_create(actor=system, username="owner", password=password, roles=[Role.MODEL_OWNER], desk=desk)
    gateway = org.user_create(actor=system, username="gateway", password=password, roles=[Role.TRADING_SYSTEM])
    org.desk_access_grant(actor=system, user=gateway, desk=desk, permission="view_desk_models")
    _, token = org.token_issue(actor=system, user=gateway)
    artifact = skops_classifier_bytes()
    deployments = []
    for i in range(n_models):
        model = registry.model_create(
            actor=owner,
            name=f"bench-live-{i:02d}",
            purpose="alpha",
            desk=desk,
            owner=owner,
            model_type="logistic_regression",
            materiality="1000000.00",
        )
        version = registry.model_version_create(actor=owner, model=model, version="1.0.0", artifact=artifact)
        now = timezone.now()
        with audited_change():
            ModelVersion.objects.filter(pk=version.pk).update(status="deployed")
            record_event(
                actor=system, action="benchmark.deployment_forced", target=version, after={"status": "deployed"}
            )
            deployment = Deployment.objects.create(
                model=model,
                version=version,
                phase="pilot",
                phase_started_at=now,
                capital_limit="2000000.00",
                currency="USD",
                instruments=["NVDA", "ORCL"],
                max_daily_loss="40000.00",
                rollback_plan="Pull the kill switch; the desk unwinds open positions.",
                started_at=now,
            )
            record_event(actor=system, action="benchmark.deployment_forced", target=deployment)
        deployments.append(deployment)
    return deployments, token


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _server_cpu(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            total += _cpu_seconds(p)
    return total


def _percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    array = np.asarray(values) * 1000.0
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(array.max()), 3),
    }


def _expected(deployment: Any, killed_reason: str | None) -> dict[str, Any]:
    return {
        "allowed": killed_reason is None,
        "version": "1.0.0",
        "phase": deployment.phase,
        "capital_limit": str(deployment.capital_limit),
        "currency": "USD",
        "instruments": list(deployment.instruments),
        "reason": f"deployed in phase {deployment.phase}"
        if killed_reason is None
        else f"kill switch engaged: {killed_reason}",
    }


def _run(
    *,
    args: argparse.Namespace,
    token: str,
    deployments: list[Any],
    rate: float,
    duration: float,
    clients: int,
    server_pid: int,
    killed: dict[str, Any],
    kill_at_middle: bool,
) -> dict[str, Any]:
    """One load run through the second process; the kill switch pulled at its middle if asked."""
    spec = {
        "host": "127.0.0.1",
        "port": args.port,
        "token": token,
        "models": [d.model_id for d in deployments],
        "clients": clients,
        "rate": rate,
        "duration": duration,
        "seed": int(rate * 1000) + clients,
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec))
        load_before = os.getloadavg()
        cpu_before = _server_cpu(server_pid)
        process = subprocess.Popen(
            [sys.executable, __file__, "--role", "load", "--spec", str(spec_file), "--out", str(out_file)]
        )
        if kill_at_middle:
            time.sleep(1.0 + duration / 2)  # interpreter start-up, then half the run
            from audit.services import SystemActor
            from governance import services

            reason = "benchmark: kill switch during the load"
            target = deployments[0]
            killed["requested_wall"] = time.time()
            services.kill_switch_engage(actor=SystemActor("benchmark"), model=target.model, reason=reason)
            killed["committed_wall"] = time.time()  # the service returned: committed, cache forgotten
            killed["reason"] = reason
        if process.wait() != 0:
            raise SystemExit("the load generator failed")
        server_cpu = _server_cpu(server_pid) - cpu_before
        load_after = os.getloadavg()
        data = json.loads(out_file.read_text())

    rows = data["results"]
    if args.raw:  # every request, for a closer look: model, due, sent, received (perf_counter), status
        with Path(args.raw).open("a") as raw:
            for model, due, sent, received, _, status, _ in rows:
                raw.write(f"{clients},{rate},{model},{due:.6f},{sent:.6f},{received:.6f},{status}\n")
    elapsed = data["ended"] - data["started"]
    service, scheduled, errors, late_allowed = [], [], [], []
    first_denied = None
    last_allowed = None
    by_model = {i: d for i, d in enumerate(deployments)}
    ttl = args.ttl
    for model, due, sent, received, sent_wall, status, body in rows:
        service.append(received - sent)
        if due:
            scheduled.append(received - due)
        if status != 200:
            errors.append(f"HTTP {status}: {body[:200]}")
            continue
        answer = json.loads(body)
        killed_now = False
        if model == 0 and "committed_wall" in killed:
            # Around the kill switch either answer is right until the commit plus the TTL; an
            # "allowed" received later than that is wrong. Received, not sent: under load a
            # request waits in the server's queue, and what it read is its state when served.
            after = sent_wall + (received - sent) - killed["committed_wall"]
            killed_now = answer.get("allowed") is False
            if killed_now:
                first_denied = after if first_denied is None else min(first_denied, after)
            elif sent_wall >= killed["requested_wall"] - 5.0:
                last_allowed = after if last_allowed is None else max(last_allowed, after)
                if after > ttl:
                    late_allowed.append(after)
                    errors.append(f"model 0 allowed, received {after:.3f} s after the kill switch committed")
        expected = _expected(by_model[model], killed["reason"] if killed_now else None)
        if answer != expected:
            errors.append(f"model {model}: {answer} != {expected}")
    result = {
        "mode": "open" if rate else "closed",
        "clients": clients,
        "rate_per_client": rate,
        "offered_per_s": round(clients * rate, 1) if rate else None,
        "achieved_per_s": round(len(rows) / elapsed, 1),
        "requests": len(rows),
        "errors": len(errors),
        "error_examples": errors[:3],
        "service_ms": _percentiles(service),
        "from_schedule_ms": _percentiles(scheduled) if scheduled else None,
        "server_cpu_s": round(server_cpu, 2),
        "load_generator_cpu_s": round(data["cpu_seconds"], 2),
        "seconds": round(elapsed, 2),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
    }
    if kill_at_middle:
        result["kill_switch"] = {
            "engage_call_s": round(killed["committed_wall"] - killed["requested_wall"], 4),
            # Relative to the commit, by the time the answer was received (negative: before).
            "last_allowed_received_s": None if last_allowed is None else round(last_allowed, 4),
            "first_denied_received_s": None if first_denied is None else round(first_denied, 4),
            "allowed_after_commit_plus_ttl": len(late_allowed),
            "ttl_s": ttl,
        }
    return result


def _print(result: dict[str, Any]) -> None:
    what = (
        f"open  {result['clients']} x {result['rate_per_client']:g}/s = {result['offered_per_s']:g}/s"
        if result["mode"] == "open"
        else f"closed {result['clients']} clients"
    )
    s = result["service_ms"]
    line = (
        f"{what:<28} achieved {result['achieved_per_s']:>7.1f}/s  service p50 {s['p50']:.2f} p95 {s['p95']:.2f} "
        f"p99 {s['p99']:.2f} max {s['max']:.1f} ms"
    )
    if result["from_schedule_ms"]:
        f = result["from_schedule_ms"]
        line += f"  | from schedule p95 {f['p95']:.2f} p99 {f['p99']:.2f} ms"
    line += (
        f"  errors {result['errors']}  CPU server {result['server_cpu_s']} s, load gen "
        f"{result['load_generator_cpu_s']} s  load {result['load_average_after'][0]}"
    )
    print(line, flush=True)
    if "kill_switch" in result:
        print(f"    kill switch: {result['kill_switch']}", flush=True)
    for example in result["error_examples"]:
        print(f"    error: {example}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["driver", "load"], default="driver")
    parser.add_argument("--spec", default="")
    parser.add_argument("--out", default="")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--cache-url", default=DEFAULT_CACHE, help="a Redis database of the benchmark's own (flushed)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rates", default="2,5,10,20", help="open-loop requests/s per client, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per open-loop run")
    parser.add_argument("--closed", default="1,2,5,10,25,50", help="closed-loop client counts, comma-separated")
    parser.add_argument("--closed-duration", type=float, default=8.0)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", default="")
    parser.add_argument("--raw", default="", help="append every request's timings to this CSV file")
    args = parser.parse_args()
    if args.role == "load":
        load_main(args.spec, args.out)
        return

    env = _configure(args.database_url, args.cache_url)
    _recreate_database()
    from checks_common import machine
    from django.conf import settings
    from django.core.cache import cache

    args.ttl = settings.GOVERNANCE_TRADING_PERMISSION_TTL
    before = machine()
    deployments, token = _setup(args.models)
    cache.clear()  # the benchmark's own Redis database
    from django.db import connection

    connection.close()

    server_cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "governance.wsgi",
        "--bind",
        f"127.0.0.1:{args.port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--keep-alive",
        "75",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(server_cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{args.port}/api/deployments/{deployments[0].model_id}/permission"
        request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
        for _ in range(100):
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("the server did not answer")
        config = {
            "server": f"gunicorn {' '.join(server_cmd[2:])}",
            "database": "PostgreSQL, DB_CONN_MAX_AGE=600",
            "cache": f"Redis ({args.cache_url}), GOVERNANCE_TRADING_PERMISSION_TTL={args.ttl}",
            "clients": args.clients,
            "models": args.models,
        }
        print(f"machine: {before}\nserver: {config}", flush=True)
        killed: dict[str, Any] = {}
        common = {"args": args, "token": token, "deployments": deployments, "server_pid": server.pid, "killed": killed}
        # Warm every worker and thread: imports, connections, permission caches.
        _run(rate=0, duration=3.0, clients=args.clients, kill_at_middle=False, **common)
        results = []
        rates = [float(r) for r in args.rates.split(",") if r]
        for i, rate in enumerate(rates):
            last = i == len(rates) - 1
            result = _run(rate=rate, duration=args.duration, clients=args.clients, kill_at_middle=last, **common)
            _print(result)
            results.append(result)
        for clients in [int(c) for c in args.closed.split(",") if c]:
            result = _run(rate=0, duration=args.closed_duration, clients=clients, kill_at_middle=False, **common)
            _print(result)
            results.append(result)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    target_run = next(
        (
            r
            for r in results
            if r["mode"] == "open" and r["clients"] == args.clients and r["rate_per_client"] == max(rates)
        ),
        None,
    )
    summary = {
        "benchmark": "permission_load",
        "target": f"p95 <= {TARGET_P95_MS} ms under {args.clients} concurrent clients",
        "machine": before,
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "config": config,
        "runs": results,
        "target_met_at": [
            r["offered_per_s"] for r in results if r["mode"] == "open" and r["service_ms"]["p95"] <= TARGET_P95_MS
        ],
        "target_run": target_run
        and {
            "offered_per_s": target_run["offered_per_s"],
            "service_p95_ms": target_run["service_ms"]["p95"],
            "from_schedule_p95_ms": target_run["from_schedule_ms"]["p95"],
        },
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
