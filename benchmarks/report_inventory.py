"""The 1,000-model inventory extract (issue 9: <= 10 s), end to end and stage by stage, against
the same content laid out with WeasyPrint's defaults.

    .venv/bin/python benchmarks/report_inventory.py [--models 1000] [--runs 3] [--rebuild] [--json FILE]

A database of its own: SQLite under ``var/bench/report-inventory-<N>/`` (with its own var
directory, audit key and report store), built once and reused (``--rebuild`` forces a new
one; about a minute). What is inside (deterministic for the seed):

* 4 desks; 8 model owners, 4 validators, 2 risk managers, 2 compliance officers (services);
* N models of every type and a spread of capital at risk (5% with a tier override), each
  with 1 to 3 versions in every lifecycle status, the current one on one of 12 datasets;
* validator grants on 80% of the models; a succeeded full risk assessment on 70% of the
  versions in use, finished 0 to 400 days ago (so some validations are overdue);
* ~1.5 findings a model (every severity; 60% open or in remediation);
* a live deployment for every deployed version (shadow, pilot or production, a capital limit);
* an approved sign-off with a PERF-EVIDENCE-02 or DEPLOY-DURATION-02 exception for 10% of
  the versions in use, with its policy decision under the shipped (activated) policy set.

Governed rows are bulk inserted inside ``audit.scope.audited_change()`` with one event each
(``audit.services.record_events``), as ``benchmarks/access_fixture.py`` does; the read path
measured here does not care how they got there.

Measured (best and median wall-clock and process CPU of ``--runs`` runs after a warm-up):

* ``job``: the whole report job as the Celery task runs it (``report_request`` then
  ``report_generate``: checkpoint, builder, template, layout, PDF/A, store) - the <= 10 s target;
* its stages on the same data: ``build`` (the builder's queries and rows), ``html`` (chart
  and template), ``layout`` (WeasyPrint with ``report.css``), ``pdfa`` (PDF/A-3b with the
  data attached);
* ``defaults``: the same HTML laid out and written by WeasyPrint with its defaults only (no
  project stylesheet: portrait A4 at 16 px, no fixed table layout; plain PDF).

Prints the machine and load, then a JSON summary.
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 20261123
BATCH = 500
FIXTURE_VERSION = 1


def configure(models: int) -> Path:
    """A private var directory and SQLite database; call before django.setup()."""
    var_dir = ROOT / "var" / "bench" / f"report-inventory-{models}"
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ["GOVERNANCE_VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'db.sqlite3'}"
    os.environ.setdefault("DJANGO_DEBUG", "true")
    os.environ["DJANGO_SETTINGS_MODULE"] = "governance.settings"
    for name in ("GOVERNANCE_AUDIT_SIGNING_KEY", "GOVERNANCE_AUDIT_SIGNING_KEY_FILE", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ["GOVERNANCE_REPORT_SIGNING_KEY"] = ""
    os.environ["GOVERNANCE_REPORT_SIGNING_CERT"] = ""
    return var_dir


def _log(message: str, started: float) -> None:
    print(f"  [{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


def _bulk_audited(model_class: type, objs: list[Any], action: str, after: Any) -> list[Any]:
    """Insert ``objs`` and record one ``action`` event per row, in one audited change per batch."""
    from audit.scope import audited_change
    from audit.services import SystemActor, record_events

    actor = SystemActor("bench-report-inventory")
    created: list[Any] = []
    for start in range(0, len(objs), BATCH):
        with audited_change():
            chunk = model_class.objects.bulk_create(objs[start : start + BATCH])
            record_events(
                actor=actor, entries=[{"action": action, "target": obj, "after": after(obj)} for obj in chunk]
            )
        created.extend(chunk)
    return created


def build_fixture(var_dir: Path, n_models: int) -> dict[str, Any]:
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from audit import signing
    from audit.services import SystemActor
    from audit.snapshot import snapshot
    from governance import services as org
    from governance.models import Deployment, Finding, PolicyDecision, SignOffRequest
    from governance.roles import Role
    from models_registry.choices import LifecycleStatus, ModelType, Purpose
    from models_registry.models import (
        AssessmentKind,
        AssessmentStatus,
        Dataset,
        Model,
        ModelGrant,
        ModelVersion,
        RiskAssessment,
    )

    started = time.perf_counter()
    database = var_dir / "db.sqlite3"
    connection.close()  # the file is replaced: a connection still open on it would be read-only
    if database.exists():
        database.unlink()
    call_command("migrate", verbosity=0)
    signing.generate_key_file()
    _log("migrated", started)

    rng = random.Random(SEED)
    system = SystemActor("bench-report-inventory")
    now = timezone.now()
    desks = [org.desk_create(actor=system, code=f"desk-{i}", name=f"Desk {i}") for i in range(1, 5)]

    def user(username: str, role: Role, desk: Any = None) -> Any:
        return org.user_create(
            actor=system, username=username, password="Bench-inventory-2026!", roles=(role,), desk=desk
        )

    owners = [user(f"owner{i + 1}", Role.MODEL_OWNER, desks[i % 4]) for i in range(8)]
    validators = [user(f"validator{i + 1}", Role.VALIDATOR) for i in range(4)]
    risk = [user(f"risk{i + 1}", Role.RISK_MANAGER) for i in range(2)]
    compliance = [user(f"compliance{i + 1}", Role.COMPLIANCE_OFFICER) for i in range(2)]
    policy_set, _ = org.policy_set_activate(actor=compliance[0])
    _log("users, desks, policy set", started)

    datasets = _bulk_audited(
        Dataset,
        [
            Dataset(
                name=f"prices-{i:02d}-{role}",
                source_kind="market_data_feed",
                collection_policy="End-of-day vendor file.",
                storage_location=f"s3://bench/prices-{i:02d}.csv",
                classification="internal",
                owner=owners[i % 8],
                file=f"datasets/{i:064x}.csv",
                content_sha256=f"{i:064x}",
                size_bytes=1000,
                row_count=10,
                validation_status="passed",
            )
            for i in range(4)
            for role in ("train", "validation", "test")
        ],
        "dataset.registered",
        snapshot,
    )

    purposes, types = list(Purpose.values), list(ModelType.values)
    objs = []
    for j in range(n_models):
        owner = owners[j % 8]
        model = Model(
            name=f"{owner.membership.desk.code}-{rng.choice(purposes)}-{j:04d}",
            purpose=rng.choice(purposes),
            desk=owner.membership.desk,
            owner=owner,
            description="Predicts next-day direction from daily bars.",
            objectives="Predict next-day direction.",
            constraints=rng.choice(
                [
                    "",
                    "Long/flat only; signals at the close.",
                    "Research only until explainability evidence is accepted.",
                ]
            ),
            model_type=rng.choice(types),
            materiality=Decimal(rng.choice([1, 2, 5, 10, 20, 60, 100]) * 1_000_000).quantize(Decimal("0.01")),
        )
        if rng.random() < 0.05:
            model.risk_tier_override = rng.randint(1, 3)
            model.risk_tier_override_justification = "Feeds the desk's hedging."
        model.risk_tier = model.risk_tier_override or model.computed_tier  # what Model.save() does
        objs.append(model)
    models = _bulk_audited(Model, objs, "model.created", snapshot)
    _log(f"{len(models):,} models", started)

    statuses = list(LifecycleStatus.values)
    objs = []
    for model in models:
        count = rng.choice((1, 1, 2, 3))
        for k in range(count):
            status = rng.choice(statuses) if k == count - 1 else rng.choice(("retired", "rejected", "approved"))
            digest = rng.randbytes(32).hex()
            d = rng.randrange(4) * 3
            objs.append(
                ModelVersion(
                    model=model,
                    version=f"1.{k}.0",
                    status=status,
                    artifact=f"artifacts/{digest}.skops",
                    artifact_sha256=digest,
                    artifact_size=50_000,
                    estimator_class="sklearn.linear_model._logistic.LogisticRegression",
                    framework="scikit-learn 1.9.1",
                    created_by=model.owner,
                    training_dataset=datasets[d],
                    validation_dataset=datasets[d + 1],
                    test_dataset=datasets[d + 2],
                    target="next_up",
                )
            )
    versions = _bulk_audited(ModelVersion, objs, "model_version.created", snapshot)
    in_use = [v for v in versions if v.status in ("approved", "deployed", "suspended")]
    _log(f"{len(versions):,} versions ({len(in_use):,} in use)", started)

    validate = Permission.objects.get(content_type__app_label="models_registry", codename="validate_model")
    grants = [
        ModelGrant(user=validators[i % 4], permission=validate, content_object=m)
        for i, m in enumerate(models)
        if rng.random() < 0.8
    ]
    _bulk_audited(
        ModelGrant,
        grants,
        "access.granted",
        lambda g: {"user": g.user_id, "permission": "validate_model", "object_id": g.content_object_id},
    )

    assessments = []
    for v in in_use:
        if rng.random() < 0.7:
            finished = now - dt.timedelta(days=rng.randint(0, 400), hours=rng.randint(0, 23))
            assessments.append(
                RiskAssessment(
                    model_id=v.model_id,
                    version=v,
                    kind=AssessmentKind.FULL,
                    parameters={},
                    inputs={},
                    inputs_key=rng.randbytes(32).hex(),
                    status=AssessmentStatus.SUCCEEDED,
                    progress_percent=100,
                    metrics={"accuracy": round(rng.uniform(0.5, 0.6), 4)},
                    requested_by_label="system:revalidation",
                    queued_at=finished - dt.timedelta(minutes=5),
                    started_at=finished - dt.timedelta(minutes=4),
                    finished_at=finished,
                )
            )
    _bulk_audited(RiskAssessment, assessments, "risk_assessment.succeeded", snapshot)

    findings = []
    for v in versions:
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            status = rng.choice(("open", "open", "in_remediation", "closed", "closed"))
            raised = now - dt.timedelta(days=rng.randint(1, 300))
            findings.append(
                Finding(
                    model_id=v.model_id,
                    version=v,
                    title="Backtest costs understated",
                    description="Found in validation.",
                    severity=rng.choice(("low", "medium", "medium", "high", "critical")),
                    status=status,
                    remediation_owner_id=v.created_by_id,
                    due_date=(raised + dt.timedelta(days=90)).date(),
                    raised_by=validators[0],
                    raised_at=raised,
                    closed_at=raised + dt.timedelta(days=30) if status == "closed" else None,
                )
            )
    _bulk_audited(Finding, findings, "finding.raised", snapshot)

    deployments, seen = [], set()
    for v in versions:
        if v.status in ("deployed", "suspended") and v.model_id not in seen:
            seen.add(v.model_id)
            started_at = now - dt.timedelta(days=rng.randint(1, 200))
            deployments.append(
                Deployment(
                    model_id=v.model_id,
                    version=v,
                    status="active" if v.status == "deployed" else "suspended",
                    phase=rng.choice(("shadow", "pilot", "production")),
                    phase_started_at=started_at,
                    capital_limit=Decimal(rng.choice([1, 5, 20]) * 1_000_000).quantize(Decimal("0.01")),
                    currency="USD",
                    instruments=["NVDA"],
                    rollback_plan="Switch off with the kill switch.",
                    kill_switch_engaged=v.status == "suspended",
                    started_at=started_at,
                )
            )
    _bulk_audited(Deployment, deployments, "deployment.started", snapshot)

    decisions, requests = [], []
    excepted = [v for v in in_use if rng.random() < 0.1]
    for v in excepted:
        rule = rng.choice(("PERF-EVIDENCE-02", "DEPLOY-DURATION-02"))
        approval = {
            "rule": rule,
            "roles": ["risk manager", "compliance officer"],
            "count": 2,
            "approved_by": [risk[0].username, compliance[0].username],
            "satisfied": True,
        }
        decided = now - dt.timedelta(days=rng.randint(1, 300))
        decisions.append(
            PolicyDecision(
                policy_set=policy_set,
                policy_set_hash=policy_set.content_hash,
                trigger="validated->approved" if rule == "PERF-EVIDENCE-02" else "deployment:pilot",
                model_id=v.model_id,
                version=v,
                outcome="allow",
                results=[],
                required_approvals=[approval],
                input_document={},
                input_sha256="0" * 64,
                schema_version=1,
                decided_at=decided,
                actor_label="bench",
            )
        )
    decisions = _bulk_audited(PolicyDecision, decisions, "policy.evaluated", snapshot)
    for v, decision in zip(excepted, decisions, strict=True):
        promotion = decision.trigger.startswith("deployment:")
        requests.append(
            SignOffRequest(
                model_id=v.model_id,
                version=v,
                from_status="deployed" if promotion else "validated",
                to_status="deployed" if promotion else "approved",
                requested_by_id=v.created_by_id,
                justification="Agreed with the desk.",
                deployment={"phase": "pilot"} if promotion else None,
                version_fingerprint="0" * 64,
                status="approved",
                required_approvals=decision.required_approvals,
                latest_decision=decision,
                submitted_at=decision.decided_at - dt.timedelta(days=1),
                due_at=decision.decided_at + dt.timedelta(days=9),
                expires_at=decision.decided_at + dt.timedelta(days=29),
                closed_at=decision.decided_at,
            )
        )
    _bulk_audited(SignOffRequest, requests, "signoff.submitted", snapshot)
    _log(
        f"{len(grants):,} validator grants, {len(assessments):,} assessments, {len(findings):,} findings, "
        f"{len(deployments):,} deployments, {len(requests):,} exceptions",
        started,
    )
    facts = {
        "version": FIXTURE_VERSION,
        "models": len(models),
        "versions": len(versions),
        "in_use": len(in_use),
        "assessments": len(assessments),
        "findings": len(findings),
        "deployments": len(deployments),
        "exceptions": len(requests),
        "build_s": round(time.perf_counter() - started, 1),
    }
    (var_dir / "fixture.json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def _ready(var_dir: Path, n_models: int) -> dict[str, Any] | None:
    from models_registry.models import Model

    marker = var_dir / "fixture.json"
    if not marker.exists():
        return None
    try:
        facts = json.loads(marker.read_text())
        if facts.get("version") == FIXTURE_VERSION and Model.objects.count() == facts["models"] == n_models:
            return facts
    except Exception:
        return None
    return None


def _timed(fn: Any, runs: int) -> tuple[Any, dict[str, float]]:
    result = fn()  # warm-up (fonts, templates, imports, compiled policy set)
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    wall.sort()
    cpu.sort()
    return result, {
        "wall_ms_best": round(wall[0] * 1000, 1),
        "wall_ms_median": round(wall[len(wall) // 2] * 1000, 1),
        "cpu_ms_median": round(cpu[len(cpu) // 2] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="Also write the summary here.")
    parser.add_argument("--out", type=Path, default=None, help="Write the rendered PDF/A here (to look at it).")
    parser.add_argument("--html", type=Path, default=None, help="Write the report's HTML here.")
    args = parser.parse_args()

    var_dir = configure(args.models)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from weasyprint import HTML

    from audit.services import SystemActor, checkpoint_create
    from benchmarks.checks_common import machine
    from governance import report_services
    from governance.reports import envelope, registry
    from governance.reports.context import BuildContext
    from governance.reports.pdf import write_pdfa
    from governance.reports.render import render_document, render_html

    print("machine:", json.dumps(machine()))
    call_command("migrate", verbosity=0)
    facts = None if args.rebuild else _ready(var_dir, args.models)
    if facts is None:
        facts = build_fixture(var_dir, args.models)
    print("fixture:", json.dumps(facts))

    requester = get_user_model().objects.get(username="compliance1")
    report_type = registry.get("inventory")
    reports: list[Any] = []

    def job() -> Any:
        report = report_services.report_request(actor=requester, report_type="inventory")
        report.refresh_from_db()
        if report.status == "queued":  # not eager: run the job here, as the worker would
            report_services.report_generate(report_id=report.pk)
            report.refresh_from_db()
        assert report.status == "succeeded", report.error
        reports.append(report)
        return report

    report, t_job = _timed(job, args.runs)
    checkpoint = checkpoint_create(actor=SystemActor("bench-report-inventory"))
    generated = timezone.now()
    ctx = BuildContext(report=report, checkpoint=checkpoint, generated_at=generated)
    with CaptureQueriesContext(connection) as queries:
        report_type.builder(ctx)
    data, t_build = _timed(lambda: envelope.report_data(ctx, report_type), args.runs)
    html, t_html = _timed(lambda: render_html(report_type, data), args.runs)
    document, t_layout = _timed(lambda: render_document(html), args.runs)
    pdf, t_pdfa = _timed(lambda: write_pdfa(document, data=data, attachments=[], generated_at=generated), args.runs)

    def defaults() -> tuple[int, bytes]:
        plain = HTML(string=html).render()
        return len(plain.pages), plain.write_pdf()

    (default_pages, default_pdf), t_defaults = _timed(defaults, args.runs)
    if args.out:
        args.out.write_bytes(pdf)
    if args.html:
        args.html.write_text(html)
    pages = len(document.pages)
    summary = {
        "benchmark": "report_inventory",
        "models": args.models,
        "runs": args.runs,
        "fixture": facts,
        "pages": pages,
        "landscape_pages": sum(1 for p in document.pages if p.width > p.height),
        "pdf_bytes": len(pdf),
        "report_pages_issued": report.page_count,
        "builder_queries": len(queries),
        "job": t_job,
        "stages": {"build": t_build, "html": t_html, "layout": t_layout, "pdfa": t_pdfa},
        "layout_cpu_ms_per_page": round(t_layout["cpu_ms_median"] / pages, 1),
        "weasyprint_defaults": {
            "pages": default_pages,
            "pdf_bytes": len(default_pdf),
            "cpu_ms_per_page": round(t_defaults["cpu_ms_median"] / default_pages, 1),
            **t_defaults,
        },
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
