"""A fresh database holding N realistic audit events, built quickly for the benchmarks.

Calling ``record_event`` a million times would take hours (one transaction, head lock and
tree update each). Instead the events are generated here, hashed with ``audit.hashing``
and ``audit.merkle`` exactly as the writer would, and bulk inserted together with their
tree nodes, the head and signed checkpoints (every 100,000 events, in the database and the
checkpoint file). ``audit_verify`` then checks the result like any other log, so a fixture
that was built wrongly fails the benchmark instead of flattering it.

The event shapes follow what the demo writes (model and version snapshots, lifecycle
transitions, dataset registrations and validation results, user and role changes), with
floats (some integral, some tiny), non-ASCII text and IPv4/IPv6 client addresses mixed in.

Used by ``audit_verify.py`` and ``audit_proofs.py``; the database is reused between runs
when it already holds the requested number of events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_VERSION = 1
CHECKPOINT_EVERY = 100_000
SEED = 20261123


def configure(*, events: int, database_url: str | None) -> Path:
    """Point Django at the benchmark database and a private var directory; call before django.setup().

    SQLite (the default) lives in var/bench/audit-<events>/; for PostgreSQL pass a URL
    naming a database of its own (it is dropped and recreated when rebuilt).
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if database_url:
        name = database_url.rsplit("/", 1)[-1]
        var_dir = ROOT / "var" / "bench" / f"audit-pg-{name}-{events}"
    else:
        var_dir = ROOT / "var" / "bench" / f"audit-{events}"
        database_url = f"sqlite:///{var_dir / 'db.sqlite3'}"
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = database_url
    os.environ["GOVERNANCE_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-0000000")
    os.environ["DJANGO_SETTINGS_MODULE"] = "governance.settings"
    # The benchmark must not pick up a key from the environment of whoever runs it.
    os.environ.pop("GOVERNANCE_AUDIT_SIGNING_KEY", None)
    os.environ.pop("GOVERNANCE_AUDIT_SIGNING_KEY_FILE", None)
    os.environ.pop("GOVERNANCE_AUDIT_CHECKPOINT_FILE", None)
    return var_dir


# --- event generation -------------------------------------------------------------------

_WORDS = [
    "momentum",
    "volatility",
    "regime",
    "drawdown",
    "liquidity",
    "spread",
    "exposure",
    "hedge",
    "overlay",
    "signal",
    "calibration",
    "backtest",
    "holdout",
    "desk",
    "limit",
    "sizing",
    "execution",
    "risk",
    "capital",
    "review",
]
_REASONS = [
    "",
    "",
    "Independent review of held-out metrics completed.",
    "Quarterly re-validation; no material change.",
    "Capital limit lowered after the drawdown on 2026-03-12.",
    "Revue indépendante terminée; modèle conforme.",
    "Kill switch engaged by the desk head \u2014 “stale prices”.",
    "Paramètres recalibrés (Δσ = 0.3) après la revue ✓",
]
_STATUSES = ["draft", "in_development", "submitted_for_validation", "validated", "approved", "deployed", "retired"]
_TRANSITIONS = ["start_development", "submit_for_validation", "validate", "approve", "deploy", "retire", "reject"]
_MODEL_TYPES = [
    "linear_regression",
    "logistic_regression",
    "random_forest",
    "gradient_boosting",
    "svm",
    "deep_learning",
]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _model_snapshot(rng: random.Random, object_id: int, moment: dt.datetime) -> dict[str, Any]:
    return {
        "constraints": _sentence(rng, 12),
        "created_at": _iso(moment - dt.timedelta(days=rng.randint(0, 400))),
        "description": _sentence(rng, 16),
        "desk_id": rng.randint(1, 6),
        "id": object_id,
        "materiality": f"{rng.randint(1, 500) * 100000}.00",
        "model_type": rng.choice(_MODEL_TYPES),
        "name": f"model-{object_id}-{rng.choice(_WORDS)}",
        "objectives": _sentence(rng, 14),
        "owner_id": rng.randint(1, 20),
        "purpose": rng.choice(["alpha", "execution", "risk"]),
        "risk_tier": rng.randint(1, 3),
        "risk_tier_override": None,
        "risk_tier_override_justification": "",
        "success_criteria": _sentence(rng, 15),
        "updated_at": _iso(moment),
    }


def _version_snapshot(rng: random.Random, object_id: int, moment: dt.datetime) -> dict[str, Any]:
    return {
        "artifact": f"artifacts/{rng.randbytes(32).hex()}.skops",
        "artifact_format": "skops",
        "artifact_sha256": rng.randbytes(32).hex(),
        "artifact_size": rng.randint(10_000, 5_000_000),
        "code_commit": rng.randbytes(6).hex(),
        "code_repository": "https://git.example.com/quant/models",
        "created_at": _iso(moment),
        "created_by_id": rng.randint(1, 20),
        "estimator_class": "sklearn.ensemble._forest.RandomForestClassifier",
        "feature_names": [f"f_{rng.choice(_WORDS)}_{i}" for i in range(rng.randint(3, 12))],
        "framework": "scikit-learn 1.9.1",
        # Integral floats (1.0) and tiny ones (1e-05) are the values whose JSON and JCS
        # spellings differ; real hyperparameters have them.
        "hyperparameters": {
            "C": rng.choice([1.0, 0.5, 10.0, 0.01]),
            "max_depth": rng.randint(2, 12),
            "n_estimators": rng.choice([100, 200, 500]),
            "random_state": 7,
            "tol": rng.choice([0.0001, 1e-05, 0.001]),
        },
        "id": object_id,
        "model_id": rng.randint(1, 5000),
        "n_features": rng.randint(3, 12),
        "status": "draft",
        "status_changed_at": _iso(moment),
        "test_dataset_id": rng.randint(1, 3000),
        "training_dataset_id": rng.randint(1, 3000),
        "validation_dataset_id": rng.randint(1, 3000),
        "version": f"{rng.randint(1, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
    }


def _validation_result(rng: random.Random) -> dict[str, Any]:
    columns = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    checks = [
        {
            "column": column,
            "example_rows": [] if rng.random() < 0.9 else [rng.randint(0, 5000) for _ in range(3)],
            "failing_rows": 0,
            "message": "ok",
            "passed": True,
            "rule": rule,
        }
        for rule in ("required_columns", "not_null")
        for column in columns
    ]
    return {
        "result": {
            "checks": checks,
            "passed": True,
            "row_count": rng.randint(200, 5000),
            "null_fraction": round(rng.random() / 100, 6),
        },
        "validated_at": _iso(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    }


def _metrics(rng: random.Random) -> dict[str, Any]:
    return {
        "accuracy": round(rng.uniform(0.45, 0.7), 6),
        "auc": round(rng.uniform(0.45, 0.75), 6),
        "brier": round(rng.uniform(0.1, 0.3), 6),
        "hit_rate": rng.choice([0.5, 1.0, 0.0, round(rng.random(), 4)]),
        "max_drawdown": round(-rng.uniform(0.01, 0.4), 6),
        "n_trades": rng.randint(0, 20000),
        "sharpe": round(rng.gauss(0.8, 0.6), 6),
        "window": {"end": "2026-06-30", "start": "2026-01-02"},
    }


def generate_events(first_seq: int, count: int, *, actor_ids: list[int]) -> Iterator[dict[str, Any]]:
    """``count`` events starting at ``first_seq``, deterministic for a given seq range."""
    rng = random.Random(SEED + first_seq)
    moment = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=first_seq)
    for seq in range(first_seq, first_seq + count):
        moment += dt.timedelta(microseconds=rng.randint(1, 2_000_000))
        if rng.random() < 0.01:
            moment = moment.replace(microsecond=0)  # Django stores these without a fraction on SQLite
        kind = rng.random()
        object_id = rng.randint(1, 50_000)
        before: dict[str, Any] | None
        after: dict[str, Any] | None
        if kind < 0.35:
            status = rng.randrange(len(_STATUSES) - 1)
            action = f"model_version.{rng.choice(_TRANSITIONS)}"
            object_type, before = "models_registry.modelversion", {"status": _STATUSES[status]}
            after = {"status": _STATUSES[status + 1], "transition": rng.choice(_TRANSITIONS)}
        elif kind < 0.55:
            action, object_type = rng.choice(["model.created", "model.updated"]), "models_registry.model"
            after = _model_snapshot(rng, object_id, moment)
            before = None if action == "model.created" else {**after, "risk_tier": 3}
        elif kind < 0.70:
            action, object_type = "model_version.created", "models_registry.modelversion"
            before, after = None, _version_snapshot(rng, object_id, moment)
        elif kind < 0.75:
            action, object_type = "dataset.validated", "models_registry.dataset"
            before, after = None, _validation_result(rng)
        elif kind < 0.90:
            action, object_type = "model_version.metrics_recorded", "models_registry.modelversion"
            before, after = None, _metrics(rng)
        else:
            action, object_type = rng.choice(["user.updated", "membership.set"]), "auth.user"
            before = {"is_active": True, "roles": ["model owner"]}
            after = {"is_active": rng.random() < 0.9, "roles": ["model owner", "validator"][: rng.randint(1, 2)]}
        user = rng.random() < 0.85
        actor_id = rng.choice(actor_ids) if user else None
        address_kind = rng.random()
        if address_kind < 0.5:
            address = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        elif address_kind < 0.6:
            address = f"2001:db8::{rng.randint(1, 0xFFFF):x}"
        else:
            address = None
        yield {
            "seq": seq,
            "timestamp": moment,
            "actor_id": actor_id,
            "actor_label": f"user{actor_id}" if user else "system:jobs",
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "object_repr": f"{object_type.rsplit('.', 1)[-1]} {object_id}",
            "before": before,
            "after": after,
            "reason": rng.choice(_REASONS),
            "request_id": uuid.UUID(int=rng.getrandbits(128)).hex if user else "",
            "client_address": address if user else None,
            "policy_set_hash": rng.randbytes(32).hex() if rng.random() < 0.1 else "",
        }


# --- building the database -------------------------------------------------------------

_EVENT_COLUMNS = (
    "seq",
    "timestamp",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "reason",
    "request_id",
    "client_address",
    "policy_set_hash",
    "leaf_hash",
    "prev_hash",
    "entry_hash",
    "canonical",
)


def _marker(var_dir: Path) -> Path:
    return var_dir / "fixture.json"


def ready(var_dir: Path, events: int) -> bool:
    """Whether the configured database already holds this fixture (version and size)."""
    from audit.models import Head

    marker = _marker(var_dir)
    if not marker.exists():
        return False
    expected = {"version": FIXTURE_VERSION, "events": events}
    try:
        # Migrations applied since (e.g. new permissions synced to the roles) may have
        # logged a few events of their own after the fixture's: still the same fixture.
        return json.loads(marker.read_text()) == expected and Head.objects.get(pk=1).size >= events
    except Exception:
        return False


def _recreate_database() -> None:
    from django.db import connection

    settings_dict = connection.settings_dict
    connection.close()
    if connection.vendor == "sqlite":
        Path(settings_dict["NAME"]).unlink(missing_ok=True)
        return
    import psycopg

    name = settings_dict["NAME"]
    with psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"] or "postgres",
        password=settings_dict["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


def _insert(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    from django.db import connection

    if not rows:
        return
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    connection.connection.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({placeholders})", rows)


def _db_row(fields: dict[str, Any], leaf: bytes, prev: bytes, entry: bytes, vendor: str, text: str) -> tuple[Any, ...]:
    """The row as the writer stores it (``before``/``after`` as RFC 8785 text, naive UTC
    text timestamps on SQLite; the event's canonical text)."""
    from audit import canonical

    timestamp = fields["timestamp"]
    if vendor == "sqlite":
        timestamp = str(timestamp.astimezone(dt.UTC).replace(tzinfo=None))
    before, after = fields["before"], fields["after"]
    return (
        fields["seq"],
        timestamp,
        fields["actor_id"],
        fields["actor_label"],
        fields["action"],
        fields["object_type"],
        fields["object_id"],
        fields["object_repr"],
        None if before is None else canonical.dumps(before).decode("utf-8"),
        None if after is None else canonical.dumps(after).decode("utf-8"),
        fields["reason"],
        fields["request_id"],
        fields["client_address"],
        fields["policy_set_hash"],
        leaf.hex(),
        prev.hex(),
        entry.hex(),
        text,
    )


def build(var_dir: Path, events: int, *, batch: int = 50_000, progress: bool = True) -> None:
    """Recreate the database, migrate it, and fill it with ``events`` events."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from audit import hashing, merkle, signing
    from audit.models import Event, Head

    started = time.perf_counter()
    _marker(var_dir).unlink(missing_ok=True)
    for name in ("checkpoints.jsonl",):
        (var_dir / "audit" / name).unlink(missing_ok=True)
    _recreate_database()
    call_command("migrate", verbosity=0)
    signing.generate_key_file()
    key = signing.load_private_key()

    user_model = get_user_model()
    actor_ids = []
    for i in range(20):
        user, _ = user_model.objects.get_or_create(username=f"bench{i}", defaults={"is_staff": True})
        actor_ids.append(user.pk)

    # Migrations may already have logged events (role sync): continue after them.
    existing = list(Event.objects.order_by("seq").values_list("leaf_hash", "entry_hash"))
    tree = merkle.MemoryTree([bytes.fromhex(leaf) for leaf, _ in existing])
    prev = bytes.fromhex(existing[-1][1]) if existing else hashing.GENESIS_HASH
    vendor = connection.vendor
    checkpoints: list[signing.SignedTreeHead] = []
    seq = len(existing) + 1
    with transaction.atomic():
        while seq <= events:
            count = min(batch, events - seq + 1)
            event_rows, node_rows = [], []
            for fields in generate_events(seq, count, actor_ids=actor_ids):
                if fields["seq"] % CHECKPOINT_EVERY == 0:
                    # The writer logs a checkpoint's own event before signing (services.checkpoint_create).
                    fields.update(action="audit.checkpoint", object_type="audit.checkpoint", object_id="")
                    fields.update(object_repr="", before=None, after=None, actor_id=None)
                    fields.update(actor_label="system:audit_checkpoint", request_id="", client_address=None)
                data = hashing.canonical_bytes(fields)
                leaf = merkle.leaf_hash(data)
                entry = hashing.chain_hash(prev, leaf)
                event_rows.append(_db_row(fields, leaf, prev, entry, vendor, data.decode("utf-8")))
                for level, index, value in tree.append_leaf_hash(leaf):
                    if level:
                        node_rows.append((level, index, value.hex()))
                prev = entry
                if fields["seq"] % CHECKPOINT_EVERY == 0:
                    checkpoints.append(
                        signing.sign(
                            key=key,
                            tree_size=tree.size,
                            root_hash=tree.root().hex(),
                            timestamp=fields["timestamp"] + dt.timedelta(milliseconds=1),
                        )
                    )
            _insert("audit_event", _EVENT_COLUMNS, event_rows)
            _insert("audit_tree_node", ("level", "index", "hash"), node_rows)
            seq += count
            if progress:
                rate = (seq - 1) / (time.perf_counter() - started)
                print(f"  built {seq - 1:,} events ({rate:,.0f}/s)", file=sys.stderr, flush=True)
        Head.objects.filter(pk=1).update(
            size=tree.size, last_entry_hash=prev.hex(), frontier=[[lv, h.hex()] for lv, h in tree.frontier()]
        )
        _insert(
            "audit_checkpoint",
            ("tree_size", "root_hash", "timestamp", "key_id", "signature"),
            [
                (
                    c.tree_size,
                    c.root_hash,
                    str(c.timestamp.replace(tzinfo=None)) if vendor == "sqlite" else c.timestamp,
                    c.key_id,
                    c.signature,
                )
                for c in checkpoints
            ],
        )
    checkpoint_file = Path(os.environ["GOVERNANCE_VAR_DIR"]) / "audit" / "checkpoints.jsonl"
    checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
    checkpoint_file.write_text("".join(json.dumps(c.as_json(), sort_keys=True) + "\n" for c in checkpoints))
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    _marker(var_dir).write_text(json.dumps({"version": FIXTURE_VERSION, "events": events}))
    if progress:
        print(f"  fixture ready in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def prepare(*, events: int, database_url: str | None, rebuild: bool = False) -> Path:
    """Configure Django, set it up, and build the fixture unless it is already there."""
    var_dir = configure(events=events, database_url=database_url)
    import django

    django.setup()
    if not rebuild and ready(var_dir, events):
        # A fixture built before a migration of the audit tables gets it like any database
        # (e.g. 0005, which fills the events' canonical text): timed, since it is a cost too.
        from django.core.management import call_command

        started = time.perf_counter()
        out = io.StringIO()
        call_command("migrate", verbosity=1, stdout=out)
        if "Applying" in out.getvalue():
            print(out.getvalue().strip(), file=sys.stderr)
            print(f"migrated the fixture in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    if rebuild or not ready(var_dir, events):
        print(f"building a fixture of {events:,} events ...", file=sys.stderr, flush=True)
        build(var_dir, events)
    return var_dir


def add_arguments(parser: argparse.ArgumentParser, default_events: int = 1_000_000) -> None:
    parser.add_argument("--events", type=int, default=default_events, help="events in the log (default %(default)s)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgres://... of a database the benchmark may drop and recreate (default: SQLite under var/bench/)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the fixture even if it exists")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    prepare(events=args.events, database_url=args.database_url, rebuild=True)
