"""Technical documentation in the shape of EU AI Act Annex IV (report type ``annex-iv``).

A trading model is not a high-risk AI system: Annex III does not list it (its point 5(b) is
credit scoring of natural persons), so Articles 9-17 and Annex IV apply to it only if the firm
chooses to follow them. This file follows the nine points of Annex IV for one model version,
filled from the inventory, the dataset registry, the risk assessments, the sign-offs, the
deployments with their anomaly rules and monitoring, and the audit log. Where the records
hold nothing for a point, the point says so; points that do not apply say why.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from audit.models import Event
from governance.models import Deployment, Finding, MonitoringAlert, MonitoringBatch, PolicyDecision, SignOffRequest
from governance.policy import store
from governance.reports.context import BuildContext
from governance.reports.envelope import iso
from models_registry.models import Dataset, Model, ModelVersion, RiskAssessment

# The nine points, numbered as in Annex IV (the "Status of this file" page before them is not one).
SECTIONS = (
    ("general", "General description of the AI system"),
    ("development", "Elements of the system and its development process"),
    ("monitoring", "Monitoring, functioning and control"),
    ("metrics", "Appropriateness of the performance metrics"),
    ("risk", "Risk management system"),
    ("changes", "Relevant changes through the lifecycle"),
    ("standards", "Harmonised standards applied"),
    ("conformity", "EU declaration of conformity"),
    ("post-market", "Post-market monitoring plan"),
)

# The change history lists people's and the system's decisions; progress ticks of long jobs
# and per-batch ingest receipts are counted but not listed (the audit-trail report lists them).
_NOT_LISTED = ("risk_assessment.progressed", "report.progressed", "monitoring.batch_ingested", "signoff.progressed")
MAX_LISTED_CHANGES = 300

# The figures of a full assessment shown under point 4, in this order, with how they read.
METRICS = (
    ("accuracy", "Accuracy (test period)", "ratio"),
    ("precision", "Precision", "ratio"),
    ("recall", "Recall", "ratio"),
    ("roc_auc", "ROC AUC", "ratio"),
    ("rmse", "RMSE", "number"),
    ("directional_accuracy", "Directional accuracy", "ratio"),
    ("sharpe_ratio", "Sharpe ratio (after costs)", "number"),
    ("max_drawdown", "Maximum drawdown", "percent"),
    ("total_return", "Total return (backtest)", "percent"),
    ("benchmark_total_return", "Benchmark total return (buy and hold)", "percent"),
    ("train_test_gap", "Train/test gap", "number"),
    ("cv_mean_score", "Purged cross-validation mean score", "ratio"),
    ("pbo", "Probability of backtest overfitting (PBO)", "ratio"),
    ("deflated_sharpe_ratio", "Deflated Sharpe ratio", "ratio"),
    ("data_quality_failures", "Data quality checks failed", "count"),
    ("drifted_features", "Features drifted (PSI above threshold)", "count"),
    ("max_psi", "Largest population stability index", "number"),
)

VOLUNTARY = (
    "Voluntary. Under Regulation (EU) 2024/1689 (the AI Act) a trading model is not a high-risk AI system: "
    "Annex III does not list algorithmic trading (its point 5(b) covers credit scoring of natural persons), so "
    "Article 11 and Annex IV do not oblige the firm to keep this documentation. The firm keeps it in this shape "
    "because Annex IV is a recognised, complete outline of what a reviewer needs, and because the same records "
    "serve model risk management (Federal Reserve SR 26-2 / OCC Bulletin 2026-13, which replaced SR 11-7 / "
    "OCC 2011-12 in April 2026; PRA SS1/23) and MiFID II RTS 6 (Delegated Regulation (EU) 2017/589)."
)


def _figure(value: Any, kind: str) -> str | None:
    """A stored figure as shown: the stored float rounded for reading; the JSON keeps the full value."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if kind == "count":
        return f"{int(value)}"
    if kind == "percent":
        return f"{float(value) * 100:.2f}%"
    return f"{float(value):.4f}"


def _money(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else f"{currency} {value:,.2f}"


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _dataset(role: str, dataset: Dataset | None) -> dict[str, Any]:
    if dataset is None:
        return {"role": role, "registered": False}
    result = dataset.validation_result or {}
    return {
        "role": role,
        "registered": True,
        "id": dataset.pk,
        "name": dataset.name,
        "description": dataset.description,
        "source_kind": dataset.get_source_kind_display(),
        "collection_policy": dataset.collection_policy,
        "storage_location": dataset.storage_location,
        "classification": dataset.get_classification_display(),
        "owner": _user(dataset.owner),
        "sha256": dataset.content_sha256,
        "size_bytes": dataset.size_bytes,
        "row_count": dataset.row_count,
        "columns": len(dataset.schema or []),
        "time_start": iso(dataset.time_start),
        "time_end": iso(dataset.time_end),
        "validation_status": dataset.validation_status,
        "validated_at": iso(dataset.validated_at),
        "rules_failed": [
            f"{check.get('rule')} {check.get('column') or ''}".strip()
            for check in (result.get("checks") or [])
            if isinstance(check, dict) and check.get("passed") is False
        ],
    }


def _general(model: Model, version: ModelVersion) -> dict[str, Any]:
    deployments = Deployment.objects.filter(version=version).order_by("started_at", "pk")
    return {
        "model": model.name,
        "model_id": model.pk,
        "version": version.version,
        "version_id": version.pk,
        "lifecycle_status": version.get_status_display(),
        "status_changed_at": iso(version.status_changed_at),
        "purpose": model.get_purpose_display(),
        "description": model.description,
        "objectives": model.objectives,
        "success_criteria": model.success_criteria,
        "constraints": model.constraints,
        "model_type": model.get_model_type_display(),
        "desk": model.desk.name,
        "owner": _user(model.owner),
        "provider": "developed in-house and used only by the firm",
        "risk_tier": model.risk_tier,
        "tier_rationale": model.tier_rationale,
        "materiality": _money(model.materiality, "USD"),
        "framework": version.framework,
        "estimator_class": version.estimator_class,
        "artifact_format": version.artifact_format,
        "artifact_sha256": version.artifact_sha256,
        "artifact_size": version.artifact_size,
        "instruments": sorted({i for d in deployments for i in (d.instruments or [])}),
        "other_versions": [
            {"version": v.version, "status": v.get_status_display()}
            for v in model.versions.exclude(pk=version.pk).order_by("created_at", "pk")
        ],
    }


def _development(version: ModelVersion) -> dict[str, Any]:
    return {
        "created_by": _user(version.created_by),
        "created_at": iso(version.created_at),
        "code_repository": version.code_repository,
        "code_commit": version.code_commit,
        "feature_pipeline": version.feature_pipeline,
        "target": version.target,
        "n_features": version.n_features,
        "feature_names": list(version.feature_names or []),
        "hyperparameters": [{"name": k, "value": str(v)} for k, v in sorted((version.hyperparameters or {}).items())],
        "datasets": [
            _dataset("training", version.training_dataset),
            _dataset("validation", version.validation_dataset),
            _dataset("test", version.test_dataset),
        ],
    }


def _deployment(deployment: Deployment) -> dict[str, Any]:
    batches = MonitoringBatch.objects.filter(deployment=deployment).aggregate(
        batches=Count("pk"), samples=Sum("sample_count")
    )
    return {
        "id": deployment.pk,
        "status": deployment.get_status_display(),
        "phase": deployment.phase,
        "started_at": iso(deployment.started_at),
        "ended_at": iso(deployment.ended_at),
        "capital_limit": _money(deployment.capital_limit, deployment.currency),
        "max_daily_loss": _money(deployment.max_daily_loss, deployment.currency),
        "instruments": list(deployment.instruments or []),
        "rollback_target": str(deployment.rollback_target) if deployment.rollback_target_id else None,
        "rollback_plan": deployment.rollback_plan,
        "kill_switch_engaged": deployment.kill_switch_engaged,
        "kill_reason": deployment.kill_reason,
        "killed_at": iso(deployment.killed_at),
        "killed_by": deployment.killed_by_label,
        "monitoring_overrides": [
            # JSON text (null, {"pilot": 0.05}), as the validation report has it: str() gave Python's repr.
            {"section": section, "name": name, "value": json.dumps(value, sort_keys=True)}
            for section, items in sorted((deployment.monitoring_parameters or {}).items())
            for name, value in sorted(items.items())
        ],
        "batches": batches["batches"] or 0,
        "samples": batches["samples"] or 0,
    }


def _monitoring(version: ModelVersion) -> dict[str, Any]:
    return {
        "deployments": [
            _deployment(d) for d in Deployment.objects.filter(version=version).order_by("started_at", "pk")
        ],
        "oversight": [
            "The model's owner, a risk manager or a compliance officer can pull the kill switch on a live "
            "deployment at any time; from that commit on the trading permission answers not allowed. Only a "
            "compliance officer lifts it.",
            "The anomaly rules of point 9 suspend and roll back a deployment without waiting for a person when "
            "their policy says so; each action is recorded in the audit log as system:monitoring.",
            "Every lifecycle transition and every promotion between deployment phases needs the approvals the "
            "policies in force name (sign-offs, point 5).",
        ],
    }


def _assessment(version: ModelVersion) -> dict[str, Any]:
    latest = RiskAssessment.objects.filter(version=version, status="succeeded").order_by("-finished_at", "-pk").first()
    if latest is None:
        other = (
            RiskAssessment.objects.filter(model_id=version.model_id, status="succeeded")
            .select_related("version")
            .order_by("-finished_at", "-pk")
            .first()
        )
        return {
            "assessed": False,
            "other_version": (
                {"assessment_id": other.pk, "version": other.version.version, "finished_at": iso(other.finished_at)}
                if other
                else None
            ),
        }
    metrics = latest.metrics or {}
    overfitting = latest.overfitting or {}
    parameters = latest.parameters or {}
    return {
        "assessed": True,
        "assessment_id": latest.pk,
        "kind": latest.get_kind_display(),
        "finished_at": iso(latest.finished_at),
        "requested_by": latest.requested_by_label,
        "rating": latest.rating,
        "rating_rules": [
            {"id": rule.get("id") or "", "message": rule.get("message") or ""}
            for rule in (latest.rating_rules or [])
            if rule.get("id") or rule.get("message")
        ],
        "metrics": [
            {"key": key, "label": label, "value": metrics[key], "shown": _figure(metrics[key], kind)}
            for key, label, kind in METRICS
            if _figure(metrics.get(key), kind) is not None
        ],
        "overfitting_passed": overfitting.get("passed"),
        "overfitting_method": overfitting.get("method"),
        "costs": {
            "cost_bps": parameters.get("cost_bps"),
            "slippage_bps": parameters.get("slippage_bps"),
            "pbo_threshold": parameters.get("pbo_threshold"),
            "dsr_threshold": parameters.get("dsr_threshold"),
            "psi_threshold": parameters.get("psi_threshold"),
        },
        "assessments_of_version": RiskAssessment.objects.filter(version=version).count(),
    }


def _risk(version: ModelVersion) -> dict[str, Any]:
    findings = Finding.objects.filter(version=version).order_by("raised_at", "pk")
    signoffs = SignOffRequest.objects.filter(version=version).order_by("submitted_at", "pk")
    decisions = PolicyDecision.objects.filter(version=version)
    return {
        "findings": [
            {
                "id": f.pk,
                "severity": f.get_severity_display(),
                "status": f.get_status_display(),
                "title": f.title,
                "raised_at": iso(f.raised_at),
                "remediation_owner": _user(f.remediation_owner),
                "resolution": f.resolution,
            }
            for f in findings
        ],
        "open_findings": findings.filter(status=Finding.Status.OPEN).count(),
        "signoffs": [
            {
                "id": s.pk,
                "transition": f"{s.from_status} -> {s.to_status}",
                "status": s.get_status_display(),
                "submitted_at": iso(s.submitted_at),
                "closed_at": iso(s.closed_at),
                "approvals": [
                    f"{r.approver_label} ({', '.join(r.roles)}): {r.verdict}" for r in s.responses.order_by("pk")
                ],
            }
            for s in signoffs
        ],
        "policy_decisions": [
            {"outcome": row["outcome"], "count": row["n"]}
            for row in decisions.values("outcome").annotate(n=Count("pk")).order_by("outcome")
        ],
    }


def _changes(ctx: BuildContext, model: Model, version: ModelVersion) -> dict[str, Any]:
    label = {cls: cls._meta.label_lower for cls in (Model, ModelVersion)}
    condition = Q(object_type=label[Model], object_id=str(model.pk)) | Q(
        object_type=label[ModelVersion], object_id=str(version.pk)
    )
    for cls in (SignOffRequest, Deployment, Finding, RiskAssessment, MonitoringAlert):
        ids = [str(pk) for pk in cls.objects.filter(version=version).values_list("pk", flat=True)]
        if ids:
            condition |= Q(object_type=cls._meta.label_lower, object_id__in=ids)
    events = Event.objects.filter(condition, seq__lte=ctx.checkpoint.tree_size).order_by("seq")
    counts = Counter(events.values_list("action", flat=True))
    listed = events.exclude(action__in=_NOT_LISTED)
    total_listed = listed.count()
    rows = [
        {
            "seq": e.seq,
            "timestamp": iso(e.timestamp),
            "actor": e.actor_label,
            "action": e.action,
            "object": e.object_repr or f"{e.object_type}:{e.object_id}",
            "reason": e.reason,
        }
        for e in listed[:MAX_LISTED_CHANGES]
    ]
    return {
        "event_count": sum(counts.values()),
        "by_action": [{"action": a, "count": n} for a, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))],
        "listed": rows,
        "not_listed_actions": list(_NOT_LISTED),
        "more": max(0, total_listed - len(rows)),
        "up_to_seq": ctx.checkpoint.tree_size,
    }


def _post_market(version: ModelVersion) -> dict[str, Any]:
    active = store.active_policy_set()
    rules: list[dict[str, Any]] = []
    policy_set = None
    if active is not None:
        row, compiled = active
        policy_set = {"id": row.pk, "hash": row.content_hash, "activated_at": iso(row.activated_at)}
        rules = [
            {
                "id": rule.id,
                "title": rule.spec.title,
                "actions": list(rule.spec.actions or []),
                "references": list(rule.spec.references),
            }
            for rule in compiled.rules
            if "monitoring" in rule.spec.applies_to
        ]
    alerts = MonitoringAlert.objects.filter(version=version).order_by("raised_at", "pk")
    return {
        "policy_set": policy_set,
        "rules": rules,
        "alerts": [
            {
                "id": a.pk,
                "rule_id": a.rule_id,
                "severity": a.get_severity_display(),
                "status": a.get_status_display(),
                "raised_at": iso(a.raised_at),
                "actions": list(a.actions or []),
                "message": a.message,
                "resolution": a.resolution,
            }
            for a in alerts
        ],
        "samples": MonitoringBatch.objects.filter(version=version).aggregate(n=Sum("sample_count"))["n"] or 0,
    }


def build(ctx: BuildContext) -> dict[str, Any]:
    version = (
        ModelVersion.objects.select_related(
            "model__desk", "model__owner", "training_dataset", "validation_dataset", "test_dataset", "created_by"
        )
        .filter(pk=ctx.report.version_id)
        .get()
    )
    model = version.model
    ctx.progress(20, "inventory and datasets")
    body: dict[str, Any] = {
        "sections": [{"id": key, "title": title} for key, title in SECTIONS],
        "voluntary": VOLUNTARY,
        "general": _general(model, version),
        "development": _development(version),
    }
    ctx.progress(40, "validation and risk management")
    body["monitoring"] = _monitoring(version)
    body["metrics"] = _assessment(version)
    body["risk"] = _risk(version)
    ctx.progress(60, "change history")
    body["changes"] = _changes(ctx, model, version)
    body["post_market"] = _post_market(version)
    body["standards"] = {
        "applied": [],
        "statement": (
            "None applied. The firm claims conformity with no harmonised standard (AI Act Article 40) and no "
            "common specification (Article 41) for this model; the frameworks it follows instead are those "
            "named on the cover."
        ),
    }
    body["conformity"] = {
        "applicable": False,
        "statement": (
            "Not applicable. An EU declaration of conformity (Article 47) is drawn up only for a high-risk AI "
            "system; this model is not one (see 'Status of this file'), so none has been drawn up and no CE "
            "marking is affixed."
        ),
    }
    return body
