"""A database shaped for the permission-filtered model list: 10,000 models, 50 users, ~5,000 grants.

Used by ``benchmarks/access_list.py``; on its own it (re)builds the fixture:

    .venv/bin/python benchmarks/access_fixture.py --database-url postgres://postgres@127.0.0.1:5432/bench_access

The database named in the URL is dropped and recreated, then migrated (which creates the
role groups). What is inside (deterministic for a given seed):

* 10 desks and 50 users created through the services (``desk_create``, ``user_create``):
  1 administrator (superuser), 12 model owners (on the desks), 10 model developers (one
  per desk), 6 validators, 2 risk managers, 3 compliance officers, 3 internal auditors,
  5 regulators, 4 developers with desk grants, and 4 "probe" developers holding exactly
  0, 10, 100 and 1,000 object grants and nothing else;
* 10,000 models (1,000 a desk, owned by the desk's owners) and ~15,000 versions, created
  by the owners and the desk's developer, in every lifecycle status;
* ~4,900 object grants (``ModelGrant``): developers ``view_model`` on 250 and
  ``change_model`` on 60 of their desk's models, validators ``validate_model`` on 120
  models of other desks, the probes ``view_model`` on 0/10/100/1,000 models;
* 10 desk grants (``desk_access_grant``) and 7 engagements (``engagement_create``): active
  ones covering 20 to 500 models, one expired, one revoked (``engagement_revoke``).

Models, versions and object grants are bulk inserted inside ``audit.scope.audited_change()``
with one event each through ``audit.services.record_events`` (the same actions and
snapshots as ``model_create``, ``model_version_create`` and ``model_access_grant``), so
the audited-change check still holds: no governed row without its event. Everything else
goes through the services. The read path, which is what the benchmark measures, does not
care how the rows got there; the services would take ~10 minutes for the 30,000 rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_VERSION = 1
SEED = 20261123
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_access"

DESKS = 10
MODELS_PER_DESK = 1_000
BATCH = 1_000
PROBE_GRANTS = (0, 10, 100, 1_000)
DEVELOPER_VIEW_GRANTS = 250
DEVELOPER_CHANGE_GRANTS = 60
VALIDATOR_GRANTS = 120
PASSWORD = "Bench-access-list-2026!"

# username prefix -> kind, as reported by the benchmark
KINDS = {
    "admin": "administrator (superuser)",
    "owner": "model owner",
    "dev": "model developer",
    "validator": "validator",
    "risk": "risk manager",
    "compliance": "compliance officer",
    "auditor": "internal auditor",
    "regulator": "regulator",
    "deskview": "developer with desk grants",
    "probe": "developer with only N grants",
}


def configure(*, database_url: str) -> Path:
    """Point Django at the benchmark database and a private var directory; call before django.setup()."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    name = database_url.rsplit("/", 1)[-1]
    var_dir = ROOT / "var" / "bench" / f"access-{name}"
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = database_url
    os.environ["GOVERNANCE_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-0000000")
    os.environ["DJANGO_SETTINGS_MODULE"] = "governance.settings"
    # The test client's host; the product's settings otherwise (DEBUG off, HTTPS redirect on:
    # the benchmark sends its requests as HTTPS).
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ.pop("GOVERNANCE_AUDIT_SIGNING_KEY", None)
    os.environ.pop("GOVERNANCE_AUDIT_SIGNING_KEY_FILE", None)
    os.environ.pop("GOVERNANCE_AUDIT_CHECKPOINT_FILE", None)
    return var_dir


def _marker(var_dir: Path) -> Path:
    return var_dir / "fixture.json"


def ready(var_dir: Path) -> bool:
    from models_registry.models import Model

    marker = _marker(var_dir)
    if not marker.exists():
        return False
    try:
        stored = json.loads(marker.read_text())
        return stored.get("version") == FIXTURE_VERSION and Model.objects.count() == stored["models"]
    except Exception:
        return False


def _recreate_database() -> None:
    import psycopg
    from django.db import connection

    settings_dict = connection.settings_dict
    connection.close()
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


def _log(message: str, started: float) -> None:
    print(f"  [{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


_VOCABULARY = [
    *("momentum", "volatility", "regime", "drawdown", "liquidity", "spread", "exposure", "hedge", "overlay"),
    *("signal", "calibration", "backtest", "holdout", "desk", "limit", "sizing", "execution", "risk"),
    *("capital", "review", "carry", "basis", "curve", "factor"),
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words)).capitalize() + "."


def _bulk_audited(model_class: type, objs: list[Any], action: str, after: Any) -> list[Any]:
    """Insert ``objs`` and record one ``action`` event per row, in one audited change."""
    from audit.scope import audited_change
    from audit.services import SystemActor, record_events

    actor = SystemActor("bench-access-fixture")
    created: list[Any] = []
    for start in range(0, len(objs), BATCH):
        with audited_change():
            chunk = model_class.objects.bulk_create(objs[start : start + BATCH])
            record_events(
                actor=actor, entries=[{"action": action, "target": obj, "after": after(obj)} for obj in chunk]
            )
        created.extend(chunk)
    return created


def build(var_dir: Path) -> dict[str, Any]:
    """Recreate the database, migrate it and fill it; returns what the marker records."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    started = time.perf_counter()
    _recreate_database()
    call_command("migrate", verbosity=0)
    _log("migrated", started)

    from audit.services import SystemActor
    from audit.snapshot import snapshot
    from governance import services as org
    from governance.roles import Role
    from models_registry import services as registry
    from models_registry.choices import LifecycleStatus, ModelType, Purpose
    from models_registry.models import Model, ModelGrant, ModelVersion

    rng = random.Random(SEED)
    system = SystemActor("bench-access-fixture")
    User = get_user_model()

    desks = [org.desk_create(actor=system, code=f"desk-{i:02d}", name=f"Desk {i:02d}") for i in range(1, DESKS + 1)]

    def user(username: str, roles: tuple[Role, ...], desk: Any = None, **extra: Any) -> Any:
        return org.user_create(actor=system, username=username, password=PASSWORD, roles=roles, desk=desk, **extra)

    admin = user("admin", (Role.ADMINISTRATOR,), is_superuser=True)
    # 12 owners: one per desk, and a second owner on desks 1 and 2.
    owners_by_desk: dict[int, list[Any]] = {d.pk: [] for d in desks}
    for i in range(12):
        desk = desks[i % DESKS]
        owners_by_desk[desk.pk].append(user(f"owner{i + 1:02d}", (Role.MODEL_OWNER,), desk))
    developers = {d.pk: user(f"dev{i + 1:02d}", (Role.MODEL_DEVELOPER,), d) for i, d in enumerate(desks)}
    validators = [user(f"validator{i + 1}", (Role.VALIDATOR,)) for i in range(6)]
    for i in range(2):
        user(f"risk{i + 1}", (Role.RISK_MANAGER,))
    compliance = [user(f"compliance{i + 1}", (Role.COMPLIANCE_OFFICER,)) for i in range(3)]
    for i in range(3):
        user(f"auditor{i + 1}", (Role.INTERNAL_AUDITOR,))
    regulators = [user(f"regulator{i + 1}", (Role.REGULATOR,)) for i in range(5)]
    deskviewers = [user(f"deskview{i + 1}", (Role.MODEL_DEVELOPER,), desks[(i + 5) % DESKS]) for i in range(4)]
    probes = {n: user(f"probe{n}", (Role.MODEL_DEVELOPER,)) for n in PROBE_GRANTS}
    _log(f"{User.objects.count()} users, {len(desks)} desks", started)

    # --- models -------------------------------------------------------------------------
    model_types = list(ModelType.values)
    purposes = list(Purpose.values)
    objs = []
    for desk in desks:
        for j in range(MODELS_PER_DESK):
            model = Model(
                name=f"{desk.code}-{rng.choice(purposes)}-{j:04d}-{rng.randbytes(3).hex()}",
                purpose=rng.choice(purposes),
                desk=desk,
                owner=rng.choice(owners_by_desk[desk.pk]),
                description=_text(rng, 25),
                objectives=_text(rng, 15),
                success_criteria=_text(rng, 12),
                constraints=_text(rng, 10),
                model_type=rng.choice(model_types),
                materiality=Decimal(rng.randint(1, 50_000) * 1000).quantize(Decimal("0.01")),
            )
            if rng.random() < 0.05:
                model.risk_tier_override = rng.randint(1, 3)
                model.risk_tier_override_justification = _text(rng, 8)
            model.risk_tier = model.risk_tier_override or model.computed_tier  # what Model.save() does
            objs.append(model)
    models = _bulk_audited(Model, objs, "model.created", snapshot)
    models_by_desk: dict[int, list[Any]] = {d.pk: [] for d in desks}
    for model in models:
        models_by_desk[model.desk_id].append(model)
    _log(f"{len(models):,} models", started)

    # --- versions: 0 to 3 a model, by the owner or the desk's developer -----------------
    statuses = list(LifecycleStatus.values)
    objs = []
    for model in models:
        for k in range(rng.choice((0, 1, 1, 2, 2, 3))):
            digest = rng.randbytes(32).hex()
            objs.append(
                ModelVersion(
                    model=model,
                    version=f"1.{k}.0",
                    status=rng.choice(statuses),
                    artifact=f"artifacts/{digest}.skops",
                    artifact_sha256=digest,
                    artifact_size=rng.randint(10_000, 5_000_000),
                    artifact_format="skops",
                    estimator_class="sklearn.ensemble._forest.RandomForestClassifier",
                    feature_names=[f"f{n}" for n in range(8)],
                    n_features=8,
                    framework="scikit-learn 1.9.1",
                    hyperparameters={"n_estimators": 200, "max_depth": rng.randint(2, 12)},
                    code_repository="https://git.example.com/quant/models",
                    code_commit=rng.randbytes(6).hex(),
                    created_by=rng.choice([model.owner, developers[model.desk_id]]),
                )
            )
    versions = _bulk_audited(ModelVersion, objs, "model_version.created", snapshot)
    _log(f"{len(versions):,} versions", started)

    # --- object grants ------------------------------------------------------------------
    perms = {
        p.codename: p
        for p in Permission.objects.filter(
            content_type__app_label="models_registry", codename__in=["view_model", "change_model", "validate_model"]
        )
    }
    grants: list[tuple[Any, str, Any]] = []
    for desk_id, developer in developers.items():
        viewed = rng.sample(models_by_desk[desk_id], DEVELOPER_VIEW_GRANTS)
        grants += [(developer, "view_model", m) for m in viewed]
        # Some change grants on models also viewed: overlapping grants, as in life.
        grants += [(developer, "change_model", m) for m in rng.sample(viewed, DEVELOPER_CHANGE_GRANTS)]
    desk_ids = list(models_by_desk)
    for i, validator in enumerate(validators):
        other_desks = [d for d in desk_ids if d != desk_ids[i % DESKS]]
        pool = [m for d in other_desks for m in models_by_desk[d]]
        grants += [(validator, "validate_model", m) for m in rng.sample(pool, VALIDATOR_GRANTS)]
    for n, probe in probes.items():
        grants += [(probe, "view_model", m) for m in rng.sample(models, n)]

    def grant_after(grant: Any) -> dict[str, Any]:
        return {
            "user": grant.user_id,
            "username": grant.user.get_username(),
            "permission": grant.permission.codename,
            "object_type": "models_registry.model",
            "object_id": grant.content_object_id,
        }

    grant_objs = [ModelGrant(user=u, permission=perms[c], content_object=m) for u, c, m in grants]
    _bulk_audited(ModelGrant, grant_objs, "access.granted", grant_after)
    _log(f"{len(grant_objs):,} object grants", started)

    # --- desk grants and engagements, through the services ------------------------------
    desk_grants = 0
    for i, viewer in enumerate(deskviewers):
        for desk in desks[i : i + 1 + min(i, 2)]:  # 1, 2, 3 and 3 desks
            org.desk_access_grant(actor=admin, user=viewer, desk=desk, permission="view_desk_models")
            desk_grants += 1
    org.desk_access_grant(actor=admin, user=developers[desks[0].pk], desk=desks[1], permission="view_desk_models")
    desk_grants += 1

    now = timezone.now()
    officer = compliance[0]

    def engage(regulator: Any, count: int, *, starts: dt.timedelta, ends: dt.timedelta) -> Any:
        return registry.engagement_create(
            actor=officer,
            regulator=regulator,
            authority=rng.choice(["PRA", "BaFin", "ECB", "external auditor"]),
            purpose=_text(rng, 10),
            starts_at=now + starts,
            ends_at=now + ends,
            models=rng.sample(models, count),
        )

    month = dt.timedelta(days=30)
    engage(regulators[0], 20, starts=-month, ends=month)
    engage(regulators[1], 200, starts=-month, ends=3 * month)
    engage(regulators[2], 50, starts=-month, ends=month)
    engage(regulators[2], 500, starts=-2 * month, ends=2 * month)
    engage(regulators[3], 100, starts=-3 * month, ends=-month)  # expired
    revoked = engage(regulators[4], 30, starts=-month, ends=month)
    registry.engagement_revoke(actor=officer, engagement=revoked, reason="inspection closed early")
    engage(regulators[4], 10, starts=-month, ends=month)
    _log(f"{desk_grants} desk grants, 7 engagements", started)

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    info = {
        "version": FIXTURE_VERSION,
        "seed": SEED,
        "models": len(models),
        "versions": len(versions),
        "users": User.objects.count(),
        "object_grants": len(grant_objs),
        "desk_grants": desk_grants,
        "engagements": 7,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    _marker(var_dir).write_text(json.dumps(info))
    _log(f"fixture ready: {info}", started)
    return info


def prepare(*, database_url: str, rebuild: bool = False) -> dict[str, Any]:
    """Configure Django, set it up, and build the fixture unless it is already there."""
    var_dir = configure(database_url=database_url)
    import django

    django.setup()
    if rebuild or not ready(var_dir):
        print(f"building the access fixture in {database_url} ...", file=sys.stderr, flush=True)
        return build(var_dir)
    return json.loads(_marker(var_dir).read_text())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL database the benchmark may drop and recreate (default %(default)s)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the fixture even if it exists")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    prepare(database_url=args.database_url, rebuild=True)
