"""Model inventory extract (report type ``inventory``): SR 11-7 / SR 26-2 inventory, PRA SS1/23 Principle 1.

One row per model the requester may see (``models_registry.selectors.model_list``), with its
versions, the version in use and the latest version's status, tier and why, owner /
developers / validators, vendor flag, inputs (datasets, upstream models) and outputs with
their users, restrictions on use, live deployment, last and next validation, open findings,
post-model adjustments and exceptions; the tier distribution; the overdue validations, the
open exceptions and the post-model adjustment register.

A fixed number of queries whatever the number of models (the models, their versions with
the latest full assessment annotated, validator grants, open findings counted, live
deployments, upstream links, post-model adjustments, approved sign-offs, the policy sets
those used): a 1,000-model extract is one of the issue's benchmarks
(benchmarks/report_inventory.py).

Upstream models are named only when the requester may see them (the same selector as the
rows); an empty field is printed as "none recorded", never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q

from governance.models import Deployment, Finding, PolicySet, SignOffRequest
from governance.policy import store
from governance.reports.context import BuildContext
from governance.reports.envelope import iso
from models_registry import revalidation, tiering
from models_registry.choices import Complexity, LifecycleStatus, Materiality, ModelType, Purpose, RiskTier
from models_registry.models import (
    AssessmentKind,
    AssessmentStatus,
    ModelDependency,
    ModelGrant,
    ModelVersion,
    PostModelAdjustment,
)
from models_registry.selectors import model_list

SEVERITIES = ("critical", "high", "medium", "low")
OPEN_FINDING_STATUSES = (Finding.Status.OPEN, Finding.Status.IN_REMEDIATION)
# Versions still in use: an exception granted on one stays open while it is.
IN_USE_STATUSES = (LifecycleStatus.APPROVED, LifecycleStatus.DEPLOYED, LifecycleStatus.SUSPENDED)

STATUS_GROUPS = {
    "in development": (
        LifecycleStatus.DRAFT,
        LifecycleStatus.IN_DEVELOPMENT,
        LifecycleStatus.SUBMITTED_FOR_VALIDATION,
        LifecycleStatus.VALIDATED,
        LifecycleStatus.REJECTED,
    ),
    "in use": IN_USE_STATUSES,
    "retired": (LifecycleStatus.RETIRED,),
}

DEFINITION = (
    "A model is a quantitative method that turns input data into estimates used for trading decisions "
    "(alpha signals, execution, risk). In this system a model is registered in the inventory with its purpose, "
    "desk, owner, type and capital at risk before any version of it can be developed, validated, approved or "
    "deployed: nothing reaches the trading-permission check without an inventory entry. Each model has "
    "versions (trained artifacts with their datasets), and the inventory never deletes a model."
)


def _label(choices: Any, value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _status(value: str) -> str:
    return _label(LifecycleStatus, value).lower()


def _exception_rules(policy_set_ids: set[int]) -> dict[int, dict[str, str]]:
    """For each policy set: its exception rules (id -> title), i.e. ``require_approval`` rules with
    a condition. A rule without one is an ordinary approval (always needed); a rule with one is
    the normal standard, and its approval is the escalated exception to it."""
    found: dict[int, dict[str, str]] = {}
    for policy_set in PolicySet.objects.filter(pk__in=policy_set_ids).defer("files"):
        compiled = store.compiled_set(policy_set)
        found[policy_set.pk] = {
            rule.spec.id: rule.spec.title
            for rule in compiled.rules
            if rule.spec.effect == "require_approval" and rule.spec.condition
        }
    return found


def build(ctx: BuildContext) -> dict[str, Any]:
    report = ctx.report
    now = ctx.generated_at
    intervals = revalidation.interval_days()
    currency = settings.GOVERNANCE_BASE_CURRENCY
    period_end = (
        dt.datetime.combine(report.period_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        if report.period_to
        else None
    )
    period_start = dt.datetime.combine(report.period_from, dt.time(), tzinfo=dt.UTC) if report.period_from else None

    models = model_list(user=report.requested_by)
    if period_end is not None:
        models = models.filter(created_at__lt=period_end)
    models = models.order_by("name", "pk")
    model_ids = models.values("pk")
    ctx.progress(20, "reading the inventory")

    model_rows = list(
        models.values(
            "pk",
            "name",
            "purpose",
            "model_type",
            "materiality",
            "risk_tier",
            "risk_tier_override",
            "risk_tier_override_justification",
            "constraints",
            "objectives",
            "description",
            "lifecycle_status",
            "desk__name",
            "owner__username",
            "created_at",
            "is_vendor_model",
            "vendor_name",
            "outputs_and_users",
            "restrictions_on_use",
        )
    )
    visible_ids = {row["pk"] for row in model_rows}
    names = {row["pk"]: row["name"] for row in model_rows}
    upstream: dict[int, list[str]] = defaultdict(list)
    for model_id, upstream_id in (
        ModelDependency.objects.filter(model__in=model_ids)
        .order_by("upstream__name")
        .values_list("model_id", "upstream_id")
    ):
        if upstream_id in visible_ids:  # a model the requester may not see is not named
            upstream[model_id].append(names[upstream_id])
    adjustments: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for adj in (
        PostModelAdjustment.objects.filter(model__in=model_ids)
        .with_status(now)
        .order_by("effective_from", "pk")
        .values(
            "pk",
            "model_id",
            "model__name",
            "version__version",
            "adjustment",
            "description",
            "reason",
            "approved_by__username",
            "effective_from",
            "effective_until",
            "status",
            "withdrawn_at",
            "withdrawal_reason",
        )
    ):
        adjustments[adj["model_id"]].append(
            {
                "id": adj["pk"],
                "model": adj["model__name"],
                "version": adj["version__version"],
                "adjustment": adj["adjustment"],
                "description": adj["description"],
                "reason": adj["reason"],
                "approved_by": adj["approved_by__username"],
                "effective_from": iso(adj["effective_from"]),
                "effective_until": iso(adj["effective_until"]),
                "status": adj["status"],
                "withdrawn_at": iso(adj["withdrawn_at"]),
                "withdrawal_reason": adj["withdrawal_reason"] or None,
            }
        )
    versions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in (
        ModelVersion.objects.filter(model__in=model_ids)
        .annotate(
            last_assessed_at=Max(
                "assessments__finished_at",
                filter=Q(assessments__status=AssessmentStatus.SUCCEEDED, assessments__kind=AssessmentKind.FULL),
            )
        )
        .order_by("model_id", "created_at", "pk")
        .values(
            "pk",
            "model_id",
            "version",
            "status",
            "created_by__username",
            "feature_pipeline",
            "target",
            "training_dataset__name",
            "validation_dataset__name",
            "test_dataset__name",
            "last_assessed_at",
        )
    ):
        versions[row["model_id"]].append(row)

    validators: dict[int, list[str]] = defaultdict(list)
    for model_id, username in (
        ModelGrant.objects.filter(content_object__in=model_ids, permission__codename="validate_model")
        .order_by("user__username")
        .values_list("content_object_id", "user__username")
    ):
        validators[model_id].append(username)

    findings: dict[int, Counter[str]] = defaultdict(Counter)
    for model_id, severity, count in (
        Finding.objects.filter(model__in=model_ids, status__in=OPEN_FINDING_STATUSES)
        .values("model_id", "severity")
        .annotate(n=Count("pk"))
        .values_list("model_id", "severity", "n")
    ):
        findings[model_id][severity] = count

    live: dict[int, dict[str, Any]] = {
        row["model_id"]: row
        for row in Deployment.objects.filter(model__in=model_ids, status__in=Deployment.LIVE_STATUSES).values(
            "pk",
            "model_id",
            "version__version",
            "status",
            "phase",
            "phase_started_at",
            "capital_limit",
            "currency",
            "instruments",
            "max_daily_loss",
            "kill_switch_engaged",
        )
    }
    ctx.progress(40, "reading exceptions")

    signoffs = list(
        SignOffRequest.objects.filter(
            model__in=model_ids, status=SignOffRequest.Status.APPROVED, latest_decision__isnull=False
        )
        .order_by("closed_at", "pk")
        .values(
            "pk",
            "model_id",
            "model__name",
            "version_id",
            "version__version",
            "version__status",
            "from_status",
            "to_status",
            "deployment",
            "required_approvals",
            "closed_at",
            "latest_decision__policy_set_id",
        )
    )
    rules_by_set = _exception_rules({row["latest_decision__policy_set_id"] for row in signoffs})
    exceptions: list[dict[str, Any]] = []
    for row in signoffs:
        rules = rules_by_set.get(row["latest_decision__policy_set_id"], {})
        closed_at = row["closed_at"]
        if period_start is not None and closed_at is not None and not (period_start <= closed_at < period_end):
            continue
        for approval in row["required_approvals"] or []:
            if approval.get("rule") not in rules or not approval.get("satisfied"):
                continue
            promotion = row["from_status"] == row["to_status"] == LifecycleStatus.DEPLOYED
            phase = (row["deployment"] or {}).get("phase")
            exceptions.append(
                {
                    "kind": "policy exception",
                    "model_id": row["model_id"],
                    "model": row["model__name"],
                    "version": row["version__version"],
                    "rule": approval["rule"],
                    "title": rules[approval["rule"]],
                    "change": f"promotion to {phase}" if promotion else f"{row['from_status']} -> {row['to_status']}",
                    "signoff_id": row["pk"],
                    "approved_by": list(approval.get("approved_by") or []),
                    "granted_at": iso(row["closed_at"]),
                    "open": row["version__status"] in IN_USE_STATUSES,
                    "open_because": (
                        f"version {row['version__version']} is {row['version__status']}"
                        if row["version__status"] in IN_USE_STATUSES
                        else f"closed: version {row['version__version']} is {row['version__status']}"
                    ),
                }
            )
    exceptions_by_model: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for exception in exceptions:
        exceptions_by_model[exception["model_id"]].append(exception)
    ctx.progress(60, "assembling the rows")

    rows: list[dict[str, Any]] = []
    overdue: list[dict[str, Any]] = []
    tier_counts: Counter[int] = Counter()
    tier_overrides: Counter[int] = Counter()
    status_counts: Counter[str] = Counter()
    open_findings_total: Counter[str] = Counter()
    for model in model_rows:
        model_id = model["pk"]
        tier = model["risk_tier"]
        assessment = tiering.assess_tier(model_type=model["model_type"], capital_at_risk=model["materiality"])
        override = model["risk_tier_override"]
        rationale = assessment.rationale
        if override is not None:
            rationale = (
                f"tier {override} by override ({model['risk_tier_override_justification']}); computed {rationale}"
            )
            tier_overrides[tier] += 1
            exceptions_by_model[model_id].append(
                {
                    "kind": "tier override",
                    "model_id": model_id,
                    "model": model["name"],
                    "version": None,
                    "rule": None,
                    "title": f"tier {override} instead of the computed tier {assessment.tier}",
                    "change": model["risk_tier_override_justification"],
                    "signoff_id": None,
                    "approved_by": [],
                    "granted_at": None,
                    "open": True,
                    "open_because": "the override is in force",
                }
            )
        tier_counts[tier] += 1
        model_versions = versions.get(model_id, [])
        deployment = live.get(model_id)
        current = None
        if deployment is not None:
            current = next((v for v in model_versions if v["version"] == deployment["version__version"]), None)
        # The version in use: the live deployment's, else the latest approved, deployed or suspended one.
        in_use = current or next((v for v in reversed(model_versions) if v["status"] in IN_USE_STATUSES), None)
        latest = model_versions[-1] if model_versions else None
        if current is None and model_versions:
            current = latest
        # A model's status: its version in use's, else its latest version's (draft without one).
        status = in_use["status"] if in_use is not None else model["lifecycle_status"]
        status_counts[status] += 1

        # Last validation: the latest succeeded full risk assessment of any version; next due: the
        # revalidation policy by tier, for each version still approved, deployed or suspended.
        assessed = [v["last_assessed_at"] for v in model_versions if v["last_assessed_at"] is not None]
        last_validation = max(assessed) if assessed else None
        due_dates: list[tuple[dt.datetime | None, dict[str, Any]]] = []
        for version in model_versions:
            if version["status"] in revalidation.REVALIDATED_STATUSES:
                last = version["last_assessed_at"]
                due_dates.append((None if last is None else last + dt.timedelta(days=intervals[tier]), version))
        next_due = None
        validation_state = "not scheduled (no version in use)"
        is_overdue = False
        overdue_note = ""
        if due_dates:
            never = [version for due, version in due_dates if due is None]
            if never:
                is_overdue = True
                validation_state = f"overdue: version {never[0]['version']} ({never[0]['status']}) has no validation"
                overdue_due, overdue_version = None, never[0]
            else:
                overdue_due, overdue_version = min(due_dates, key=lambda item: item[0])
                next_due = overdue_due
                is_overdue = overdue_due < now
                validation_state = "overdue" if is_overdue else "scheduled"
            if is_overdue:
                overdue_note = overdue_version["version"] + (
                    " never validated" if overdue_version["last_assessed_at"] is None else ""
                )
                overdue.append(
                    {
                        "model_id": model_id,
                        "model": model["name"],
                        "version": overdue_version["version"],
                        "status": overdue_version["status"],
                        "status_label": _status(overdue_version["status"]),
                        "tier": tier,
                        "interval_days": intervals[tier],
                        "last_validation": iso(overdue_version["last_assessed_at"]),
                        "due": iso(overdue_due),
                        "days_overdue": None if overdue_due is None else (now - overdue_due).days,
                    }
                )

        open_counts = findings.get(model_id, Counter())
        open_findings_total.update(open_counts)
        datasets = []
        if current is not None:
            for key in ("training_dataset__name", "validation_dataset__name", "test_dataset__name"):
                if current[key]:
                    datasets.append({"role": key.split("_")[0], "name": current[key]})
        developers = sorted({model["owner__username"], *(v["created_by__username"] for v in model_versions)})
        rows.append(
            {
                "id": model_id,
                "name": model["name"],
                "versions": [
                    {
                        "id": v["pk"],
                        "version": v["version"],
                        "status": v["status"],
                        "status_label": _status(v["status"]),
                    }
                    for v in model_versions
                ],
                "current_version": None if current is None else current["version"],
                "type": _label(ModelType, model["model_type"]),
                "complexity": str(assessment.complexity.label),
                "purpose": _label(Purpose, model["purpose"]),
                "description": model["description"] or model["objectives"],
                "materiality": str(model["materiality"]),
                "currency": currency,
                "desk": model["desk__name"],
                "owner": model["owner__username"],
                "developers": developers,
                "other_developers": [name for name in developers if name != model["owner__username"]],
                "validators": validators.get(model_id, []),
                "tier": tier,
                "tier_computed": assessment.tier,
                "tier_overridden": override is not None,
                "tier_rationale": rationale,
                # The short form printed in the table (the thresholds are printed once, with the tiers).
                "tier_basis": (
                    f"override: {model['risk_tier_override_justification']} (computed tier {assessment.tier})"
                    if override is not None
                    else f"{assessment.materiality.label.lower()} x {assessment.complexity.label.lower()}"
                ),
                "status": status,
                "status_label": _status(status),
                "in_use": None
                if in_use is None
                else {
                    "version": in_use["version"],
                    "status": in_use["status"],
                    "status_label": _status(in_use["status"]),
                    "phase": deployment["phase"]
                    if deployment is not None and deployment["version__version"] == in_use["version"]
                    else None,
                },
                "latest": None
                if latest is None
                else {
                    "version": latest["version"],
                    "status": latest["status"],
                    "status_label": _status(latest["status"]),
                },
                "latest_differs": latest is not None and (in_use is None or latest["pk"] != in_use["pk"]),
                "vendor": {"is_vendor": model["is_vendor_model"], "name": model["vendor_name"] or None},
                "inputs": {
                    "datasets": datasets,
                    "feature_pipeline": None if current is None else current["feature_pipeline"],
                    "upstream_models": upstream.get(model_id, []),
                },
                "outputs": {
                    "target": (current["target"] or None) if current is not None else None,
                    "users": model["outputs_and_users"] or None,
                },
                "restrictions": model["restrictions_on_use"] or None,
                "constraints": model["constraints"] or None,
                "deployment": None
                if deployment is None
                else {
                    "id": deployment["pk"],
                    "version": deployment["version__version"],
                    "status": deployment["status"],
                    "phase": deployment["phase"],
                    "phase_started_at": iso(deployment["phase_started_at"]),
                    "capital_limit": str(deployment["capital_limit"]),
                    "currency": deployment["currency"],
                    "instruments": deployment["instruments"],
                    "max_daily_loss": None
                    if deployment["max_daily_loss"] is None
                    else str(deployment["max_daily_loss"]),
                    "kill_switch_engaged": deployment["kill_switch_engaged"],
                },
                "last_validation": iso(last_validation),
                "next_validation_due": iso(next_due),
                "validation_state": validation_state,
                "validation_overdue": is_overdue,
                # Which version is overdue (the last validation may be another version's).
                "overdue_version": overdue_note,
                "open_findings": {
                    "total": sum(open_counts.values()),
                    **{severity: open_counts.get(severity, 0) for severity in SEVERITIES},
                },
                "post_model_adjustments": [
                    {"id": a["id"], "version": a["version"], "adjustment": a["adjustment"], "status": a["status"]}
                    for a in adjustments.get(model_id, [])
                ],
                "exceptions": [
                    {
                        "kind": e["kind"],
                        "rule": e["rule"],
                        "version": e["version"],
                        "signoff_id": e["signoff_id"],
                        "open": e["open"],
                    }
                    for e in exceptions_by_model.get(model_id, [])
                ],
            }
        )
    ctx.progress(75, "summarising")

    # Datasets are named once, in the annex, and referred to by D1, D2... in the rows: most
    # models share a few datasets, and a name in every row costs lines (and layout time).
    # Numbered in the order the rows first name them (training, validation, test), so that a
    # row reads D1, D2, D3 rather than an alphabetical jumble.
    dataset_names = list(dict.fromkeys(d["name"] for r in rows for d in r["inputs"]["datasets"]))
    references = {name: f"D{n}" for n, name in enumerate(dataset_names, start=1)}
    dataset_use: dict[str, dict[str, Any]] = {
        name: {"ref": references[name], "name": name, "roles": set(), "models": 0} for name in dataset_names
    }
    for r in rows:
        for d in r["inputs"]["datasets"]:
            d["ref"] = references[d["name"]]
            dataset_use[d["name"]]["roles"].add(d["role"])
            dataset_use[d["name"]]["models"] += 1
    datasets_annex = [{**use, "roles": sorted(use["roles"])} for use in dataset_use.values()]
    all_exceptions = [e for row_id in (r["id"] for r in rows) for e in exceptions_by_model.get(row_id, [])]
    all_adjustments = [a for row_id in (r["id"] for r in rows) for a in adjustments.get(row_id, [])]
    overdue.sort(key=lambda item: (item["tier"], item["due"] or "", item["model"]))
    tiers = [
        {
            "tier": tier,
            "label": str(RiskTier(tier).label),
            "models": tier_counts.get(tier, 0),
            "overridden": tier_overrides.get(tier, 0),
            "revalidation_days": intervals[tier],
        }
        for tier in (1, 2, 3)
    ]
    statuses = [
        {
            "group": group,
            "statuses": [
                {"status": str(status), "label": _status(status), "models": status_counts.get(str(status), 0)}
                for status in members
            ],
            "models": sum(status_counts.get(str(status), 0) for status in members),
        }
        for group, members in STATUS_GROUPS.items()
    ]
    for group in statuses:
        group["present"] = [s for s in group["statuses"] if s["models"]]
    requester = report.requested_by
    # The same test as the registry's scope: oversight roles see every model.
    sees_all = requester.is_superuser or requester.has_perm("models_registry.oversee_model")
    scope = "every model in the inventory" if sees_all else f"the models {requester.get_username()} may see"
    return {
        "as_of": iso(now),
        "definition": DEFINITION,
        "inclusion": {
            "scope": scope,
            "statuses": statuses,
            "text": (
                "Every registered model is included, whatever its lifecycle status: in development (draft, in "
                "development, submitted for validation, validated, rejected), in use (approved, deployed, "
                "suspended) and retired. A model's status is that of its version in use (the live deployment's, "
                "else the latest approved, deployed or suspended version), else of its latest version (draft when "
                "it has none); the latest version's status is shown beside it when that is another version. "
                + (
                    f"Period: models registered up to {report.period_to.isoformat()}, and the exceptions granted "
                    f"from {report.period_from.isoformat()} to {report.period_to.isoformat()}; every other figure "
                    "is as at generation."
                    if report.period_to
                    else "No period: the inventory as at generation."
                )
            ),
        },
        "currency": currency,
        "summary": {
            "model_count": len(rows),
            "version_count": sum(len(r["versions"]) for r in rows),
            "deployed_count": sum(1 for r in rows if r["deployment"] is not None),
            "overdue_count": len(overdue),
            "exception_count": len(all_exceptions),
            "open_exception_count": sum(1 for e in all_exceptions if e["open"]),
            "adjustment_count": len(all_adjustments),
            "active_adjustment_count": sum(1 for a in all_adjustments if a["status"] == "active"),
            "vendor_count": sum(1 for r in rows if r["vendor"]["is_vendor"]),
            "open_findings": {
                "total": sum(open_findings_total.values()),
                **{severity: open_findings_total.get(severity, 0) for severity in SEVERITIES},
            },
        },
        "tiers": tiers,
        "tiering": {
            "materiality_thresholds": {
                "high": str(settings.GOVERNANCE_MATERIALITY_HIGH),
                "medium": str(settings.GOVERNANCE_MATERIALITY_MEDIUM),
            },
            "matrix": [
                {
                    "materiality": str(band.label),
                    "tiers": [tiering.TIER_MATRIX[band][complexity] for complexity in Complexity],
                }
                for band in (Materiality.HIGH, Materiality.MEDIUM, Materiality.LOW)
            ],
            "complexities": [str(complexity.label) for complexity in Complexity],
        },
        "revalidation_days": {str(tier): days for tier, days in intervals.items()},
        "models": rows,
        "overdue": overdue,
        "exceptions": all_exceptions,
        "adjustments": all_adjustments,
        "datasets": datasets_annex,
        "exception_rules": [
            {"rule": rule, "title": title}
            for rule, title in sorted({(e["rule"], e["title"]) for e in all_exceptions if e["rule"]})
        ],
        "sections": [
            {"id": "definition", "title": "Model definition and inclusion criteria"},
            {"id": "tiers", "title": "Tier distribution"},
            {"id": "inventory", "title": "Inventory"},
            {"id": "overdue", "title": "Overdue validations"},
            {"id": "exceptions", "title": "Exceptions"},
            {"id": "adjustments", "title": "Post-model adjustments"},
            {"id": "datasets", "title": "Annex: datasets used as inputs"},
        ],
    }
