from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.services import SystemActor
from governance import services as governance_services
from governance.roles import Role
from models_registry import services
from tests.factories import PRICE_CSV, DeskFactory, UserFactory, csv_bytes, skops_classifier_bytes

# Deployed-model fixtures shared by tests/anomaly, monitoring, reports and signoff.
from tests.fixtures_deployment import (  # noqa: F401  (fixtures, and EVIDENCE for the sign-offs below)
    EVIDENCE,
    deploy_newer,
    deployed,
    deployed_with_target,
    live_deployment,
    newer,
)


@pytest.fixture
def desk(db):
    return DeskFactory(code="equities", name="Equities")


@pytest.fixture
def other_desk(db):
    return DeskFactory(code="rates", name="Rates")


@pytest.fixture
def owner(db, desk):
    """A model owner on ``desk`` (models are registered on their owner's own desk)."""
    user = UserFactory(username="olivia", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    governance_services.membership_set(actor=SystemActor("tests"), user=user, desk=desk)
    return user


@pytest.fixture
def validator(db):
    return UserFactory(username="victor", roles=[Role.VALIDATOR])


@pytest.fixture
def outsider(db):
    """Staff with no role: sees nothing in the inventory."""
    return UserFactory(username="oscar", roles=[])


@pytest.fixture
def compliance(db):
    return UserFactory(username="chloe", roles=[Role.COMPLIANCE_OFFICER])


@pytest.fixture
def make_model(owner, desk):
    def make(**overrides: Any):
        data: dict[str, Any] = {
            "name": "eq-direction",
            "purpose": "alpha",
            "desk": desk,
            "owner": owner,
            "model_type": "logistic_regression",
            "materiality": Decimal("1000000.00"),
        }
        data.update(overrides)
        return services.model_create(actor=data.pop("actor", owner), **data)

    return make


@pytest.fixture
def make_dataset(owner):
    def make(**overrides: Any):
        data: dict[str, Any] = {
            "name": "prices",
            "source_kind": "market_data_feed",
            "collection_policy": "End-of-day vendor file.",
            "storage_location": "s3://bucket/prices.csv",
            "classification": "public",
            "owner": owner,
            "content": PRICE_CSV,
            "rules": {"required_columns": ["Date", "Close"], "monotonic_timestamps": True},
        }
        data.update(overrides)
        return services.dataset_register(actor=data.pop("actor", owner), **data)

    return make


@pytest.fixture
def make_version(owner, make_model):
    def make(model=None, **overrides: Any):
        data: dict[str, Any] = {"version": "1.0.0", "artifact": skops_classifier_bytes()}
        data.update(overrides)
        model = model or make_model()
        # The model's owner by default: adding a version needs change scope on the model.
        return services.model_version_create(actor=data.pop("actor", model.owner), model=model, **data)

    return make


# Policies and sign-offs: a version that can be approved under the shipped policy set.


@pytest.fixture
def risk_manager(db):
    return UserFactory(username="rhea", roles=[Role.RISK_MANAGER])


@pytest.fixture
def active_set(compliance):
    """The shipped policy set, activated by a compliance officer."""
    policy_set, _ = governance_services.policy_set_activate(actor=compliance)
    return policy_set


def _prices(dates: list[str]) -> bytes:
    rows = "\n".join(f"{day},10.0,10.5,9.8,10.2,10.2,1000" for day in dates)
    return csv_bytes(f"Date,Open,High,Low,Close,Adj Close,Volume\n{rows}\n")


PERIODS = {
    "training": ["2019-01-02", "2019-06-03", "2019-12-31"],
    "validation": ["2020-01-02", "2020-06-01", "2020-12-31"],
    "test": ["2021-01-04", "2021-06-01", "2021-12-31"],
}


@pytest.fixture
def split_datasets(make_dataset, owner):
    """Training, validation and test datasets over disjoint years, each validated (passed)."""
    made = {}
    for role, dates in PERIODS.items():
        dataset = make_dataset(name=f"prices-{role}", content=_prices(dates))
        made[role] = services.dataset_validate(actor=owner, dataset=dataset)
    return made


@pytest.fixture
def submitted_version(make_model, make_version, split_datasets, owner):
    """A version with a problem definition and three datasets, submitted for validation by its owner."""
    model = make_model(
        name="eq-policy",
        objectives="Predict next-day direction.",
        success_criteria="Accuracy above 53% out of sample.",
        constraints="Daily bars; long or flat.",
    )
    version = make_version(
        model=model,
        training_dataset=split_datasets["training"],
        validation_dataset=split_datasets["validation"],
        test_dataset=split_datasets["test"],
    )
    for status in ("in_development", "submitted_for_validation"):
        version = services.model_version_transition(actor=owner, version=version, to_status=status)
    return version


@pytest.fixture
def validated_version(submitted_version, validator, compliance):
    """``submitted_version`` validated by an assigned, independent validator."""
    services.validation_assign(actor=compliance, model=submitted_version.model, validator=validator)
    return services.model_version_transition(actor=validator, version=submitted_version, to_status="validated")


@pytest.fixture
def second_risk_manager(db):
    return UserFactory(username="rory", roles=[Role.RISK_MANAGER])


@pytest.fixture
def approvable(validated_version, active_set):
    """A validated version of a low-complexity tier 3 model, with the shipped set in force."""
    return validated_version


@pytest.fixture
def approved_version(approvable, owner, risk_manager, compliance):
    from governance import services

    request = services.signoff_submit(
        actor=owner, version=approvable, to_status="approved", justification="Validated.", evidence=EVIDENCE
    )
    services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="Risk: fine.")
    services.signoff_respond(actor=compliance, request=request, verdict="approve", comment="Compliance: fine.")
    approvable.refresh_from_db()
    assert approvable.status == "approved"
    return approvable


@pytest.fixture
def api(db):
    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


def _is_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    broker = os.environ.get("CELERY_BROKER_URL")
    postgres = _is_postgres()
    for item in items:
        if item.get_closest_marker("integration") and not broker:
            item.add_marker(pytest.mark.skip(reason="integration: set CELERY_BROKER_URL to run with a real worker"))
        if item.get_closest_marker("postgres") and not postgres:
            item.add_marker(pytest.mark.skip(reason="postgres: set DATABASE_URL=postgres://... to run"))


@contextmanager
def celery_conf(**values: Any) -> Iterator[None]:
    """Celery's own conf changed for a block, then its layer of changes put back as it was.

    Celery reads its conf through to the Django settings, so saving values *read* (which may
    come from a settings override of the moment) and writing them back would pin them for
    every later test of the process; this restores the layer itself."""
    from governance.celery import app

    changes = app.conf.changes
    saved = {key: changes[key] for key in values if key in changes}
    app.conf.update(**values)
    try:
        yield
    finally:
        for key in values:
            changes.pop(key, None)
        changes.update(saved)


@pytest.fixture
def celery_worker_process(_celery_worker_started: str) -> Iterator[str]:
    """A real ``celery worker`` process (started once per test process) and, for this test
    only, eagerness off and its queue as the default: the other tests stay eager."""
    with celery_conf(task_always_eager=False, task_default_queue=_celery_worker_started):
        yield _celery_worker_started


@pytest.fixture(scope="session")
def _celery_worker_started(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A real ``celery worker`` process on the configured broker, using the test database.

    It listens on a queue of its own, so stale messages from earlier runs never reach it.
    """
    from django.conf import settings
    from django.db import connection

    queue = f"test-{uuid.uuid4().hex[:12]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.test_settings",
        "DATABASE_URL": f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        if _is_postgres()
        else f"sqlite:///{db['NAME']}",
        "GOVERNANCE_VAR_DIR": str(settings.VAR_DIR),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        # The worker's own audit files, so that its checkpoints never mix with other runs'.
        "GOVERNANCE_AUDIT_SIGNING_KEY_FILE": str(Path(settings.VAR_DIR) / "audit" / f"key-{queue}.pem"),
        "GOVERNANCE_AUDIT_CHECKPOINT_FILE": str(Path(settings.VAR_DIR) / "audit" / f"checkpoints-{queue}.jsonl"),
    }
    log = Path(settings.VAR_DIR) / f"worker-{queue}.log"
    with log.open("wb") as log_file:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "governance",
                "worker",
                "-Q",
                queue,
                "--pool=prefork",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while b"ready." not in log.read_bytes():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"celery worker did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.2)
            yield queue
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()


@pytest.fixture(scope="session", autouse=True)
def _test_flush_bypasses_audit_triggers() -> Iterator[None]:
    """Transactional tests empty every table between tests; the audit tables refuse that.

    Only here, the flush does what a table owner could: on PostgreSQL it runs with
    ``session_replication_role = replica`` (triggers off for that transaction), on SQLite
    it drops the triggers and recreates them. The application itself never does this.
    """
    import importlib

    from django.db import connection

    triggers = importlib.import_module("audit.migrations.0002_append_only_triggers")
    checkpoint_triggers = importlib.import_module("audit.migrations.0004_checkpoint_append_only")
    drops = [
        f"DROP TRIGGER IF EXISTS {name}"
        for name in [
            *(f"{t}_no_{op}" for t in (*triggers.PROTECTED, "audit_checkpoint") for op in ("update", "delete")),
            "audit_head_no_delete",
        ]
    ]
    ops_class = type(connection.ops)
    original = ops_class.sql_flush

    def flush(self, style, tables, **kwargs):  # type: ignore[no-untyped-def]
        statements = original(self, style, tables, **kwargs)
        if not statements:
            return statements
        if connection.vendor == "postgresql":
            return ["SET LOCAL session_replication_role = replica", *statements]
        return [*drops, *statements, *triggers.SQLITE, *checkpoint_triggers.SQLITE]

    ops_class.sql_flush = flush
    yield
    ops_class.sql_flush = original


@pytest.fixture(autouse=True)
def _private_audit_files(settings, tmp_path) -> None:
    """Each test gets its own checkpoint file and signing key path: the file lives outside
    the database on purpose, so it would otherwise outlive the test database's flush."""
    settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE = tmp_path / "audit" / "checkpoints.jsonl"
    settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE = tmp_path / "audit" / "signing-key.pem"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The cache (the trading permission) outlives a test's rolled-back rows, and ids are reused
    between tests: each test starts and ends with it empty."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
