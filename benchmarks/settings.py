"""Benchmark-only settings: the product's settings plus the audit libraries we compare against.

Used by ``benchmarks/audit_write.py``, ``benchmarks/audit_write_bulk.py`` and
``benchmarks/audit_write_service.py`` only. The
libraries (django-auditlog, django-simple-history, django-pghistory) come from the
``bench`` extra (``pip install -e '.[bench]'``) and are never installed apps of the product.

``BENCH_DATABASE_URL`` picks the database: by default a SQLite file
``var/bench/<BENCH_DB_NAME>.sqlite3`` (the product's own SQLite configuration: rollback
journal, 20 s busy timeout), or e.g. ``postgres://postgres@127.0.0.1:5432/bench_write``.
django-pghistory needs PostgreSQL, so it and its model are only installed there.
"""

from __future__ import annotations

import os

import dj_database_url

os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-0000000000")

from governance.settings import *  # noqa: F403
from governance.settings import INSTALLED_APPS, VAR_DIR

BENCH_DIR = VAR_DIR / "bench"
BENCH_DIR.mkdir(parents=True, exist_ok=True)
_name = os.environ.get("BENCH_DB_NAME", "bench_write")
_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{BENCH_DIR / _name}.sqlite3"
DATABASES = {"default": dj_database_url.parse(_url, conn_max_age=None)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The same options as governance/settings.py gives the product's SQLite database.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    if os.environ.get("BENCH_SQLITE_WAL"):
        # Not the product's setting; only to show how much of a write is the journal's fsync.
        DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
BENCH_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

INSTALLED_APPS = [*INSTALLED_APPS, "auditlog", "simple_history"]
if BENCH_POSTGRES:
    INSTALLED_APPS += ["pgtrigger", "pghistory"]
INSTALLED_APPS += ["benchmarks.benchapp"]

# The benchmark app's tables (and pghistory's triggers on them) are created from the
# models by benchmarks/audit_write_common.py, so no migrations need keeping in step with
# whichever libraries the database allows.
MIGRATION_MODULES = {"benchapp": None}
SECURE_SSL_REDIRECT = False
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
