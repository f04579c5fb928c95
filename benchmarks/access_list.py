"""The permission-filtered model list: GET /api/models/ as each kind of user, on PostgreSQL.

Target (issue 5): with 10,000 models, 50 users and realistic grants, a page of 50 answers
in <= 100 ms at p95, and the number of queries is the same whatever the page size and
the number of grants.

    .venv/bin/python benchmarks/access_list.py [--database-url postgres://postgres@127.0.0.1:5432/bench_access]
        [--runs 3] [--requests 200] [--warmup 20] [--per-kind 3] [--rebuild]

Builds (or reuses) the fixture of ``benchmarks/access_fixture.py``, then:

1. checks, for every measured user, that the list's ``count`` and first page are exactly
   the models the access rules allow (recomputed here with plain queries, not with the
   selector), so that a fast but wrong scope fails the benchmark;
2. counts the queries of one request (``CaptureQueriesContext``) for page sizes 10, 50,
   100 and 500 for every measured user, and for the probe users holding 0, 10, 100 and
   1,000 grants; the benchmark fails if the count varies with either;
3. times ``--requests`` requests (after ``--warmup``) for ``--per-kind`` users of each
   kind, ``--runs`` times, and reports p50/p95/p99 per user and run, and the best and
   median of the runs;
4. runs EXPLAIN (ANALYZE, BUFFERS) of the list's own SQL (the count and the page, as
   captured from a request) for the slowest scoped user, and times it ``--explain-runs``
   times;
5. as a check of what the test-client figures leave out, times the slowest user's list
   authenticated by a real API token, and with a new database connection per request (the
   product's default ``DB_CONN_MAX_AGE=0``).

Requests go through the whole stack (middleware, DRF authentication, permission, filter
backends, pagination, serializer, JSON rendering) with ``APIClient.force_authenticate``;
the user is loaded afresh before each request (outside the timer), so that no permission
cache carries over from one request to the next as it could not in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import access_fixture

PAGE_SIZES = (10, 50, 100, 500)
TARGET_P95_MS = 100.0


def _percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "p99": round(cuts[98], 2),
        "max": round(max(samples), 2),
    }


def _kind(username: str) -> str:
    for prefix, kind in access_fixture.KINDS.items():
        if username.startswith(prefix):
            return kind
    return "other"


def _pick_users(per_kind: int) -> list[Any]:
    """``per_kind`` users of each kind, spread over the kind's users; every probe user."""
    from django.contrib.auth import get_user_model

    users = list(get_user_model().objects.order_by("username"))
    picked = []
    for prefix in access_fixture.KINDS:
        group = [u for u in users if u.username.startswith(prefix)]
        if prefix == "probe":
            group.sort(key=lambda u: int(u.username.removeprefix("probe")))
            picked += group
            continue
        k = min(per_kind, len(group))
        step = (len(group) - 1) / (k - 1) if k > 1 else 0
        picked += [group[round(i * step)] for i in range(k)]
    return picked


def _expected_ids(user: Any) -> set[int]:
    """The models ``user`` may see, by the rules of issue 5, recomputed without the selector."""
    from django.utils import timezone

    from governance.models import DeskGrant
    from models_registry.models import EngagementModel, Model, ModelGrant, ModelVersion

    if user.is_superuser or user.groups.filter(permissions__codename="oversee_model").exists():
        return set(Model.objects.values_list("pk", flat=True))
    ids = set(Model.objects.filter(owner=user).values_list("pk", flat=True))
    ids |= set(
        ModelGrant.objects.filter(
            user=user, permission__codename__in=["view_model", "change_model", "validate_model"]
        ).values_list("content_object_id", flat=True)
    )
    desks = DeskGrant.objects.filter(
        user=user, permission__codename__in=["view_desk_models", "change_desk_models"]
    ).values_list("content_object_id", flat=True)
    ids |= set(Model.objects.filter(desk_id__in=list(desks)).values_list("pk", flat=True))
    ids |= set(ModelVersion.objects.filter(created_by=user).values_list("model_id", flat=True))
    now = timezone.now()
    ids |= set(
        EngagementModel.objects.filter(
            engagement__regulator=user,
            engagement__starts_at__lte=now,
            engagement__ends_at__gt=now,
            engagement__revoked_at__isnull=True,
        ).values_list("model_id", flat=True)
    )
    return ids


class Lister:
    """GET /api/models/ through the real stack, as a freshly loaded user."""

    def __init__(self) -> None:
        from django.contrib.auth import get_user_model
        from rest_framework.test import APIClient

        self.User = get_user_model()
        self.client = APIClient()

    def get(self, user_pk: int, *, page_size: int = 50, page: int = 1) -> tuple[float, Any]:
        user = self.User.objects.get(pk=user_pk)  # fresh: no permission cache from the last request
        self.client.force_authenticate(user)
        params = {"page_size": page_size} if page == 1 else {"page_size": page_size, "page": page}
        cpu = time.process_time()
        started = time.perf_counter()
        response = self.client.get("/api/models/", params, secure=True)
        elapsed = (time.perf_counter() - started) * 1000
        self.last_cpu_ms = (time.process_time() - cpu) * 1000
        if response.status_code != 200:
            sys.exit(f"GET /api/models/ as {user.username}: {response.status_code} {response.content[:300]!r}")
        return elapsed, response

    def queries(self, user_pk: int, *, page_size: int) -> tuple[list[str], Any]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        user = self.User.objects.get(pk=user_pk)
        self.client.force_authenticate(user)
        with CaptureQueriesContext(connection) as captured:
            response = self.client.get("/api/models/", {"page_size": page_size}, secure=True)
        assert response.status_code == 200, response.content[:300]
        return [q["sql"] for q in captured.captured_queries], response


def check_scope(lister: Lister, users: list[Any]) -> dict[str, int]:
    """Every measured user's count and first page match the rules; returns the counts."""
    counts = {}
    for user in users:
        expected = _expected_ids(user)
        _, response = lister.get(user.pk, page_size=100)
        body = response.json()
        ids = {row["id"] for row in body["results"]}
        if body["count"] != len(expected) or not ids <= expected:
            sys.exit(
                f"scope mismatch for {user.username}: the API counts {body['count']}, the rules give "
                f"{len(expected)}; {len(ids - expected)} listed models are outside the scope"
            )
        counts[user.username] = body["count"]
    return counts


COUNT_QUERY = "count of the scoped models"
PAGE_QUERY = "page of models (+desk, owner, lifecycle status)"


def _describe(sql: str) -> str:
    s = " ".join(sql.split())
    if s.startswith('SELECT COUNT(*) AS "__count" FROM "models_registry_model"'):
        return COUNT_QUERY
    if s.startswith('SELECT "models_registry_model"."id"') and " LIMIT " in s:
        return PAGE_QUERY
    if "auth_permission" in s and "auth_user_user_permissions" in s:
        return "user's own permissions"
    if "auth_permission" in s and "auth_group" in s:
        return "user's group permissions"
    return s[:90]


def count_queries(lister: Lister, users: list[Any], visible: dict[str, int]) -> dict[str, Any]:
    """Queries per request by page size and by number of grants; exits if any count varies."""
    per_user: dict[str, dict[int, int]] = {}
    shapes: dict[str, list[str]] = {}
    for user in users:
        per_user[user.username] = {}
        for size in PAGE_SIZES:
            sqls, _ = lister.queries(user.pk, page_size=size)
            per_user[user.username][size] = len(sqls)
            if size == 50:
                shapes.setdefault(_kind(user.username), [_describe(s) for s in sqls])
    varying = {name: c for name, c in per_user.items() if len(set(c.values())) != 1}
    probes = {name: c[50] for name, c in per_user.items() if name.startswith("probe")}
    # A user who sees nothing needs no page query (Django does not run a query for an empty
    # slice), so an empty list is one query shorter; the constancy is checked for the others.
    nonempty_probes = {name: n for name, n in probes.items() if visible[name] > 0}
    by_kind: dict[str, set[int]] = {}
    for name, c in per_user.items():
        by_kind.setdefault(_kind(name), set()).update(c.values())
    return {
        "per_user": per_user,
        "by_kind": {kind: sorted(v) for kind, v in by_kind.items()},
        "probes_by_grants": probes,
        "shapes": shapes,
        "varying_with_page_size": varying,
        "constant_over_page_size": not varying,
        "constant_over_grants": len(set(nonempty_probes.values())) == 1,
    }


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class BackendCPU:
    """CPU time used by this connection's PostgreSQL backend process (from /proc, 10 ms ticks)."""

    def __init__(self) -> None:
        import os

        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")
        self.tick = os.sysconf("SC_CLK_TCK")

    def ms(self) -> float:
        try:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) * 1000 / self.tick  # utime + stime


def time_users(lister: Lister, users: list[Any], *, requests: int, warmup: int) -> dict[str, dict[str, float]]:
    """Per user: wall-clock percentiles, and the CPU each request cost this process and the
    database backend (averages; they do not depend on how busy the other cores are)."""
    backend = BackendCPU()
    out = {}
    for user in users:
        for _ in range(warmup):
            lister.get(user.pk)
        load = _loadavg()
        samples, cpu = [], []
        db_before = backend.ms()
        for _ in range(requests):
            samples.append(lister.get(user.pk)[0])
            cpu.append(lister.last_cpu_ms)
        db_ms = (backend.ms() - db_before) / requests
        p = out[user.username] = {
            **_percentiles(samples),
            "python_cpu_ms": round(statistics.mean(cpu), 2),
            "db_cpu_ms": round(db_ms, 2),
            "loadavg": round((load + _loadavg()) / 2, 2),
        }
        print(
            f"    {user.username:<14} p50 {p['p50']:7.2f}  p95 {p['p95']:7.2f}  p99 {p['p99']:7.2f}  "
            f"max {p['max']:7.2f} ms; cpu python {p['python_cpu_ms']:.1f} + db {p['db_cpu_ms']:.1f} ms; "
            f"load {p['loadavg']}",
            file=sys.stderr,
            flush=True,
        )
    return out


def breakdown(lister: Lister, user: Any, *, requests: int) -> dict[str, float]:
    """Median wall time of ``user``'s request and of its SQL (as psycopg sees it, round trips included)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    total, sql = [], []
    for _ in range(requests):
        fresh = lister.User.objects.get(pk=user.pk)
        lister.client.force_authenticate(fresh)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            lister.client.get("/api/models/", {"page_size": 50}, secure=True)
            total.append((time.perf_counter() - started) * 1000)
        sql.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
    return {
        "request_ms_median": round(statistics.median(total), 2),
        "sql_ms_median": round(statistics.median(sql), 2),
        "rest_ms_median": round(statistics.median(t - q for t, q in zip(total, sql, strict=True)), 2),
    }


def explain(lister: Lister, user: Any, *, runs: int) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the count and page queries of ``user``'s list, as the request sends them."""
    from django.db import connection

    sqls, _ = lister.queries(user.pk, page_size=50)
    out: dict[str, Any] = {}
    for sql in sqls:
        what = _describe(sql)
        if what not in (COUNT_QUERY, PAGE_QUERY):
            continue
        times, planning, plan = [], [], ""
        with connection.cursor() as cursor:
            for _ in range(runs):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
                doc = cursor.fetchone()[0]
                doc = json.loads(doc) if isinstance(doc, str) else doc
                times.append(doc[0]["Execution Time"])
                planning.append(doc[0]["Planning Time"])
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        out[what] = {
            "sql": sql,
            "execution_ms_best": round(min(times), 3),
            "execution_ms_median": round(statistics.median(times), 3),
            "planning_ms_median": round(statistics.median(planning), 3),
            "plan": plan,
        }
    return out


def time_variants(lister: Lister, user: Any, *, requests: int, warmup: int) -> dict[str, Any]:
    """The slowest user's list with a real token, and with a new connection per request."""
    from django.db import connection

    from audit.services import SystemActor
    from governance.services import token_issue, token_revoke

    actor = SystemActor("bench-access-list")
    token, key = token_issue(actor=actor, user=user)
    try:
        client = lister.client
        client.force_authenticate(None)
        header = {"HTTP_AUTHORIZATION": f"Token {key}"}
        out = {}
        for label, reconnect in (("token", False), ("token_new_connection", True)):
            samples = []
            for i in range(warmup + requests):
                if reconnect:
                    connection.close()
                started = time.perf_counter()
                response = client.get("/api/models/", {"page_size": 50}, secure=True, **header)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.content[:300]
                if i >= warmup:
                    samples.append(elapsed)
            out[label] = _percentiles(samples)
            print(f"    {user.username} {label}: {out[label]}", file=sys.stderr, flush=True)
        return out
    finally:
        token_revoke(actor=actor, tokens=[token], reason="benchmark done")


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 1024 / 1024, 1)}


def _versions() -> dict[str, str]:
    import subprocess
    from importlib.metadata import version

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]

    def git(*args: str) -> str:
        root = access_fixture.ROOT
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    changed = git("status", "--porcelain", "--", "models_registry", "governance", "audit")
    return {
        "commit": git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if changed else ""),
        "python": platform.python_version(),
        "postgresql": server,
        **{name: version(name) for name in ("django", "djangorestframework", "django-guardian", "psycopg")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    access_fixture.add_arguments(parser)
    parser.add_argument("--runs", type=int, default=3, help="timed runs over all users (default %(default)s)")
    parser.add_argument(
        "--requests", type=int, default=200, help="timed requests per user and run (default %(default)s)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first (default %(default)s)")
    parser.add_argument("--per-kind", type=int, default=3, help="users measured of each kind (default %(default)s)")
    parser.add_argument(
        "--explain-runs", type=int, default=20, help="EXPLAIN ANALYZE repetitions (default %(default)s)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the full results here too")
    args = parser.parse_args()
    fixture = access_fixture.prepare(database_url=args.database_url, rebuild=args.rebuild)

    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("this benchmark is for PostgreSQL")
    lister = Lister()
    users = _pick_users(args.per_kind)
    print(f"{len(users)} users: {', '.join(u.username for u in users)}", file=sys.stderr, flush=True)

    print("checking each user's scope against the rules ...", file=sys.stderr, flush=True)
    visible = check_scope(lister, users)

    print("counting queries ...", file=sys.stderr, flush=True)
    queries = count_queries(lister, users, visible)
    print(
        json.dumps({k: queries[k] for k in ("by_kind", "probes_by_grants", "varying_with_page_size")}, indent=1),
        file=sys.stderr,
    )

    runs: list[dict[str, dict[str, float]]] = []
    for run in range(1, args.runs + 1):
        print(f"run {run}/{args.runs}: {args.requests} requests per user after {args.warmup} warm-up", file=sys.stderr)
        runs.append(time_users(lister, users, requests=args.requests, warmup=args.warmup))

    summary_users = {}
    for user in users:
        per_run = [r[user.username] for r in runs]
        summary_users[user.username] = {
            "kind": _kind(user.username),
            "visible": visible[user.username],
            "queries": queries["per_user"][user.username][50],
            **{
                f"{q}_{agg}": round(fn([p[q] for p in per_run]), 2)
                for q in ("p50", "p95", "p99")
                for agg, fn in (("best", min), ("median", statistics.median))
            },
            **{q: round(statistics.median([p[q] for p in per_run]), 2) for q in ("python_cpu_ms", "db_cpu_ms")},
            "loadavg": [p["loadavg"] for p in per_run],
            "runs": per_run,
        }
    slowest = max(users, key=lambda u: summary_users[u.username]["p95_median"])
    scoped = [u for u in users if summary_users[u.username]["visible"] < fixture["models"] and not u.is_superuser]
    slowest_scoped = max(scoped, key=lambda u: summary_users[u.username]["p95_median"])
    heaviest = {u.username: u for u in (slowest_scoped, slowest)}
    print(f"EXPLAIN ANALYZE for {', '.join(heaviest)} ...", file=sys.stderr, flush=True)
    plans = {name: explain(lister, u, runs=args.explain_runs) for name, u in heaviest.items()}
    split = {name: breakdown(lister, u, requests=50) for name, u in heaviest.items()}
    print(f"SQL share of the request: {split}", file=sys.stderr, flush=True)
    print("token and new-connection variants ...", file=sys.stderr, flush=True)
    variants = time_variants(lister, slowest, requests=args.requests, warmup=args.warmup)

    worst_p95 = max(s["p95_median"] for s in summary_users.values())
    result = {
        "benchmark": "access_list",
        "date": dt.date.today().isoformat(),
        "machine": _machine(),
        "versions": _versions(),
        "fixture": fixture,
        "method": {
            "runs": args.runs,
            "requests": args.requests,
            "warmup": args.warmup,
            "page_size": 50,
            "users": len(users),
        },
        "users": summary_users,
        "queries": {k: queries[k] for k in ("per_user", "by_kind", "probes_by_grants", "shapes")},
        "explain": plans,
        "sql_share": split,
        "variants": {"user": slowest.username, **variants},
        "worst_p95_ms_median_of_runs": worst_p95,
        "target_p95_ms": TARGET_P95_MS,
        "p95_met": worst_p95 <= TARGET_P95_MS,
        "queries_constant": queries["constant_over_page_size"] and queries["constant_over_grants"],
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))

    print()
    print(
        f"{'user':<14} {'kind':<30} {'visible':>7} {'q':>3}  {'p50 best/med':>15}  {'p95 best/med':>15}  "
        f"{'p99 best/med':>15}  {'cpu py+db':>11}"
    )
    for name, s in summary_users.items():
        print(
            f"{name:<14} {s['kind']:<30} {s['visible']:>7} {s['queries']:>3}  "
            f"{s['p50_best']:>6.1f} /{s['p50_median']:>6.1f}  {s['p95_best']:>6.1f} /{s['p95_median']:>6.1f}  "
            f"{s['p99_best']:>6.1f} /{s['p99_median']:>6.1f}  {s['python_cpu_ms']:>5.1f}+{s['db_cpu_ms']:<5.1f}"
        )
    print()
    for name, per_query in plans.items():
        for what, p in per_query.items():
            print(
                f"EXPLAIN ANALYZE {name} {what}: execution best {p['execution_ms_best']} ms, median "
                f"{p['execution_ms_median']} ms, planning {p['planning_ms_median']} ms"
            )
            print(p["plan"])
            print()
    print(json.dumps({k: v for k, v in result.items() if k not in ("users", "queries", "explain")}))
    print(f"queries per request by kind: {queries['by_kind']}; probes at page size 50: {queries['probes_by_grants']}")
    print(
        f"target p95 <= {TARGET_P95_MS:.0f} ms: {'met' if result['p95_met'] else 'NOT met'} (worst {worst_p95} ms); "
        f"queries constant over page size and grants: {'yes' if result['queries_constant'] else 'NO'}"
    )
    if not result["queries_constant"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
