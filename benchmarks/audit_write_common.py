"""Shared set-up of the audited-write benchmarks: database, fresh copies, seed rows, reporting.

Each repetition starts from a copy of one migrated database (SQLite: a file copy;
PostgreSQL: ``CREATE DATABASE ... TEMPLATE``), so every run writes into the same empty
tables and an audit log of the same size, whatever ran before it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"


def add_database_arguments(parser: argparse.ArgumentParser, *, default_name: str) -> None:
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--db-name",
        default=default_name,
        help="database (PostgreSQL) or file under var/bench/ (SQLite) of the benchmark's own: it is dropped and "
        "re-created, with <name>_template beside it",
    )
    parser.add_argument("--postgres-server", default=POSTGRES_SERVER, help="trust authentication assumed")
    parser.add_argument("--sqlite-wal", action="store_true", help="WAL + synchronous=NORMAL (not the product's)")


def setup_django(args: argparse.Namespace) -> None:
    """Point the benchmark settings at the chosen database and start Django."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DB_NAME"] = args.db_name
    if args.db == "postgres":
        os.environ["BENCH_DATABASE_URL"] = f"{args.postgres_server}/{args.db_name}"
    else:
        os.environ.pop("BENCH_DATABASE_URL", None)
    if args.sqlite_wal:
        os.environ["BENCH_SQLITE_WAL"] = "1"
    import django

    django.setup()


class FreshDatabase:
    """Migrate once into a template, then hand out an identical copy before each repetition."""

    def __init__(self) -> None:
        from django.db import connection

        self.settings = connection.settings_dict
        self.vendor = connection.vendor
        self.name = str(self.settings["NAME"])
        self.template = f"{self.name}_template"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.settings["HOST"] or "127.0.0.1",
            port=self.settings["PORT"] or 5432,
            user=self.settings["USER"] or "postgres",
            dbname="postgres",
            autocommit=True,
        )

    def _sqlite_files(self, name: str) -> list[Path]:
        return [Path(name + suffix) for suffix in ("", "-journal", "-wal", "-shm")]

    def prepare(self, seed: Callable[[], None]) -> None:
        from django.core.management import call_command
        from django.db import connections

        connections.close_all()
        if self.vendor == "postgresql":
            with self._admin() as admin:
                for db in (self.name, self.template):
                    admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{self.name}"')
        else:
            for path in self._sqlite_files(self.name) + self._sqlite_files(self.template):
                path.unlink(missing_ok=True)
        call_command("migrate", verbosity=0)
        create_benchmark_tables()
        seed()
        connections.close_all()
        if self.vendor == "postgresql":
            with self._admin() as admin:
                admin.execute(f'CREATE DATABASE "{self.template}" TEMPLATE "{self.name}"')
        else:
            shutil.copyfile(self.name, self.template)

    def restore(self) -> None:
        from django.db import connections

        connections.close_all()
        if self.vendor == "postgresql":
            with self._admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template}"')
        else:
            for path in self._sqlite_files(self.name):
                path.unlink(missing_ok=True)
            shutil.copyfile(self.template, self.name)


def create_benchmark_tables() -> None:
    """Create the benchmark app's tables after the migrated apps (they refer to ``auth_user``).

    ``migrate --run-syncdb`` would create them first and fail on PostgreSQL; the app has no
    migrations because its models depend on which libraries the database allows.
    """
    from django.apps import apps
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in apps.get_app_config("benchapp").get_models():
            editor.create_model(model)
    if connection.vendor == "postgresql":
        import pgtrigger

        pgtrigger.install()


def seed_actor_and_desk() -> None:
    """The user every write is attributed to, and the desk every row belongs to."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from benchmarks.benchapp.models import BenchDesk

    with transaction.atomic():
        get_user_model().objects.create_user(username="bench", password=None)
        BenchDesk.objects.create(code="equities")


def actor_and_desk() -> tuple[Any, Any]:
    from django.contrib.auth import get_user_model

    from benchmarks.benchapp.models import BenchDesk

    return get_user_model().objects.get(username="bench"), BenchDesk.objects.get(code="equities")


def item_fields(i: int, *, owner: Any, desk: Any, prefix: str = "item") -> dict[str, Any]:
    """One row's values; the texts are of the length a real model description has."""
    return {
        "name": f"{prefix}-{i:06d}",
        "purpose": "alpha",
        "desk": desk,
        "owner": owner,
        "description": f"Intraday direction model {i} for liquid equities, retrained weekly.",
        "objectives": "Predict the sign of the next 30-minute return.",
        "success_criteria": "Hit rate above 52% out of sample over 6 months.",
        "constraints": "Liquid names only; no overnight positions.",
        "model_type": "classification",
        "materiality": Decimal(1_000_000 + i).quantize(Decimal("0.01")),
        "risk_tier": 2,
    }


def apply_update(obj: Any, revision: int) -> None:
    """The change every update workload makes: two fields, as a typical edit does."""
    obj.description = f"Intraday direction model, revision {revision}."
    obj.materiality = (obj.materiality + 1).quantize(Decimal("0.01"))


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@contextmanager
def timed(wall: list[float], cpu: list[float]) -> Iterator[None]:
    """Wall-clock and this process's CPU time of the block.

    CPU time leaves out waiting (fsync, the PostgreSQL server, other tenants of the
    machine), so it is the steadier measure of the work the writer itself does. A full
    collection first, so that garbage from set-up is not billed to the block.
    """
    gc.collect()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    yield
    wall.append(time.perf_counter() - start_wall)
    cpu.append(time.process_time() - start_cpu)


def count_queries(fn: Callable[[], Any]) -> int:
    """Statements sent by ``fn`` (as Django's CaptureQueriesContext sees them; COMMIT is not among them)."""
    from collections import deque

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Django keeps only the last 9,000 statements; a per-row bulk change sends more.
    connection.queries_log = deque(maxlen=10_000_000)
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def environment() -> dict[str, str]:
    """Machine and versions, for the report."""
    from django.db import connection

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            server = "PostgreSQL " + cursor.fetchone()[0]
        else:
            cursor.execute("SELECT sqlite_version()")
            server = "SQLite " + cursor.fetchone()[0]
            cursor.execute("PRAGMA journal_mode")
            server += f" (journal_mode={cursor.fetchone()[0]})"

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} x {os.cpu_count()}",
        "memory": mem,
        "python": platform.python_version(),
        "database": server,
        "django": version("Django"),
        "django-auditlog": version("django-auditlog"),
        "django-simple-history": version("django-simple-history"),
        "django-pghistory": version("django-pghistory"),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
