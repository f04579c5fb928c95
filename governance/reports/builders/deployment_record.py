"""Deployment and change approval record (report type ``deployment-record``).

MiFID II RTS 6 (Delegated Regulation 2017/589) Art. 5 (a designated person approves each
deployment or substantial update, after testing), Art. 8 (limits set before deployment) and
Art. 12 (kill functionality). The subject is one **version**: the change a deployment puts
live is a version, and every record the article asks for hangs off it (its sign-offs, its
deployments and their phases, the safety actions on them, the monitoring of its live data).

Every figure is computed here from the database; where a piece of evidence does not exist
(no assessment, no deployment, no samples) the data says so and the template prints it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Max, Min, Q, Sum
from django.db.models.functions import TruncDate

from audit.models import Event
from governance.models import Deployment, MonitoringAlert, MonitoringSample, SignOffRequest
from governance.reports.context import BuildContext
from governance.reports.envelope import iso
from models_registry.models import AssessmentKind, AssessmentStatus, ModelVersion, RiskAssessment

# The audit actions on a deployment that switch it off, return it, or move it between phases.
DEPLOYMENT_ACTIONS = (
    "deployment.started",
    "deployment.promoted",
    "deployment.reinstated",
    "deployment.ended",
    "deployment.rolled_back",
    "kill_switch.engaged",
    "kill_switch.lifted",
)
SAFETY_ACTIONS = ("kill_switch.engaged", "kill_switch.lifted", "deployment.rolled_back")
KEY_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "roc_auc",
    "total_return",
    "sharpe_ratio",
    "max_drawdown",
    "pbo",
    "deflated_sharpe_ratio",
)


def _dec(value: Any) -> str | None:
    return None if value is None else str(value)


def _fmt(value: Any) -> str:
    """A metric as printed: floats to 4 significant decimals (the JSON keeps the stored value)."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def _dataset(dataset: Any) -> dict[str, Any] | None:
    if dataset is None:
        return None
    return {"id": dataset.pk, "name": dataset.name, "sha256": dataset.content_sha256, "rows": dataset.row_count}


def _version_facts(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.pk,
        "version": version.version,
        "status": version.status,
        "created_at": iso(version.created_at),
        "created_by": version.created_by.get_username(),
        "estimator_class": version.estimator_class,
        "framework": version.framework,
        "hyperparameters": version.hyperparameters,
        "feature_names": version.feature_names,
        "artifact_sha256": version.artifact_sha256,
        "code_repository": version.code_repository,
        "code_commit": version.code_commit,
        "training_dataset": _dataset(version.training_dataset),
        "validation_dataset": _dataset(version.validation_dataset),
        "test_dataset": _dataset(version.test_dataset),
    }


def _changes(current: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What differs between the two versions, field by field (hyperparameters key by key)."""
    if previous is None:
        return []
    rows: list[dict[str, Any]] = []
    for key in sorted(set(current["hyperparameters"]) | set(previous["hyperparameters"])):
        before, after = previous["hyperparameters"].get(key), current["hyperparameters"].get(key)
        if before != after:
            rows.append({"field": f"hyperparameter {key}", "before": _fmt(before), "after": _fmt(after)})
    for field in ("estimator_class", "framework", "artifact_sha256", "code_repository", "code_commit"):
        if current[field] != previous[field]:
            rows.append({"field": field.replace("_", " "), "before": previous[field], "after": current[field]})
    for field in ("training_dataset", "validation_dataset", "test_dataset"):
        before, after = previous[field], current[field]
        if (before or {}).get("sha256") != (after or {}).get("sha256"):
            rows.append(
                {
                    "field": field.replace("_", " "),
                    "before": f"{before['name']} ({before['sha256']})" if before else "none",
                    "after": f"{after['name']} ({after['sha256']})" if after else "none",
                }
            )
    if current["feature_names"] != previous["feature_names"]:
        rows.append(
            {
                "field": "features",
                "before": ", ".join(previous["feature_names"]),
                "after": ", ".join(current["feature_names"]),
            }
        )
    return rows


def _previous_version(version: ModelVersion, rollback_target: ModelVersion | None) -> ModelVersion | None:
    # The version a deployment replaces is the one it falls back to when it names one; else the
    # model's version registered just before it.
    if rollback_target is not None:
        return rollback_target
    return (
        ModelVersion.objects.filter(model_id=version.model_id, created_at__lt=version.created_at)
        .order_by("-created_at", "-pk")
        .first()
    )


def _assessment(version: ModelVersion) -> dict[str, Any]:
    assessment = (
        RiskAssessment.objects.filter(version=version, kind=AssessmentKind.FULL, status=AssessmentStatus.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .first()
    )
    if assessment is None:
        return {"available": False, "statement": "No full risk assessment of this version has succeeded."}
    metrics = assessment.metrics or {}
    return {
        "available": True,
        "id": assessment.pk,
        "finished_at": iso(assessment.finished_at),
        "requested_by": assessment.requested_by_label,
        "rating": assessment.rating or "not rated",
        "metrics": [
            {"name": name, "value": metrics[name], "shown": _fmt(metrics[name])}
            for name in KEY_METRICS
            if name in metrics
        ],
        "accuracy": metrics.get("accuracy"),
    }


def _response_seq(response_id: int) -> int | None:
    return (
        Event.objects.filter(object_type="governance.signoffresponse", object_id=str(response_id))
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )


def _signoff(request: SignOffRequest) -> dict[str, Any]:
    responses = [
        {
            "approver": response.approver_label,
            "roles": response.roles,
            "verdict": response.verdict,
            "comment": response.comment,
            "decided_at": iso(response.decided_at),
            "round": response.round,
            "audit_seq": _response_seq(response.pk),
        }
        for response in request.responses.order_by("decided_at", "pk")
    ]
    decision = request.latest_decision
    return {
        "id": request.pk,
        "transition": f"{request.from_status} -> {request.to_status}",
        "status": request.status,
        "requested_by": request.requested_by.get_username(),
        "submitted_at": iso(request.submitted_at),
        "closed_at": iso(request.closed_at),
        "justification": request.justification,
        "evidence": request.evidence,
        "required_approvals": [
            {
                "rule": item.get("rule") or item.get("id") or "",
                "count": item.get("count"),
                "roles": item.get("roles") or [],
            }
            for item in request.required_approvals
            if isinstance(item, dict)
        ],
        "policy": (
            {"outcome": decision.outcome, "set": decision.policy_set_hash, "decided_at": iso(decision.decided_at)}
            if decision
            else None
        ),
        "responses": responses,
        "proposal": request.deployment,
    }


def _duration_text(value: Any) -> str:
    """A CEL duration as the policy states it, with whole days spelled out (``336h`` -> ``14 days (336h)``)."""
    text = str(value)
    match = re.fullmatch(r"(\d+)h", text)
    if match and int(match.group(1)) % 24 == 0:
        days = int(match.group(1)) // 24
        return f"{days} day{'s' if days != 1 else ''} ({text})"
    return text


def _phase_limits(request: SignOffRequest) -> dict[str, Any] | None:
    """The phase's limits in the policy set that judged the request (the set in force then)."""
    decision = request.latest_decision
    proposal = request.deployment or {}
    if decision is None or not proposal.get("phase"):
        return None
    from governance.policy.store import compiled_set

    phases = compiled_set(decision.policy_set).parameters.get("deployment_phases") or {}
    limits = phases.get(proposal["phase"])
    if not isinstance(limits, dict):
        return None
    return {
        "policy_set": decision.policy_set_hash,
        "live": limits.get("live"),
        "min_duration": _duration_text(limits.get("min_duration")),
        "max_capital_fraction": _dec(limits.get("max_capital_fraction")),
        "max_daily_loss_fraction": _dec(limits.get("max_daily_loss_fraction")),
        "max_instruments": limits.get("max_instruments"),
        "allowed_instruments": limits.get("allowed_instruments"),
    }


def _phase_plan(requests: list[SignOffRequest]) -> list[dict[str, Any]]:
    plan = []
    for request in requests:
        proposal = request.deployment or {}
        target = proposal.get("rollback_target") or None
        plan.append(
            {
                "signoff_id": request.pk,
                "status": request.status,
                "approved_at": iso(request.closed_at) if request.status == "approved" else None,
                "phase": proposal.get("phase"),
                "capital_limit": _dec(proposal.get("capital_limit")),
                "currency": proposal.get("currency") or "",
                "instruments": proposal.get("instruments") or [],
                "max_daily_loss": _dec(proposal.get("max_daily_loss")),
                "rollback_target": (target or {}).get("label") if isinstance(target, dict) else None,
                "rollback_plan": proposal.get("rollback_plan") or "",
                "monitoring_parameters": proposal.get("monitoring_parameters") or {},
                "monitoring_rows": [
                    {"name": name, "value": json.dumps(value, sort_keys=True)}
                    for name, value in sorted((proposal.get("monitoring_parameters") or {}).items())
                ],
                "policy_limits": _phase_limits(request),
            }
        )
    return plan


def _deployment_row(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.pk,
        "version": deployment.version.version,
        "status": deployment.status,
        "phase": deployment.phase,
        "capital_limit": _dec(deployment.capital_limit),
        "currency": deployment.currency,
        "instruments": deployment.instruments,
        "max_daily_loss": _dec(deployment.max_daily_loss),
        "rollback_target": deployment.rollback_target.version if deployment.rollback_target_id else None,
        "started_at": iso(deployment.started_at),
        "ended_at": iso(deployment.ended_at),
        "kill_switch_engaged": deployment.kill_switch_engaged,
    }


def _events(deployment_ids: list[int], version: ModelVersion, up_to: int) -> list[dict[str, Any]]:
    condition = Q(object_type="governance.deployment", object_id__in=[str(pk) for pk in deployment_ids]) & Q(
        action__in=DEPLOYMENT_ACTIONS
    )
    condition |= Q(
        object_type="models_registry.modelversion",
        object_id=str(version.pk),
        action__in=("model_version.deploy", "model_version.suspend", "model_version.reinstate"),
    )
    rows = []
    for event in Event.objects.filter(condition, seq__lte=up_to).order_by("seq"):
        rows.append(
            {
                "seq": event.seq,
                "timestamp": iso(event.timestamp),
                "actor": event.actor_label,
                # A system actor (a monitoring job, an operator's command) has no user row.
                "system_actor": event.actor_id is None,
                "action": event.action,
                "object": f"{event.object_type}:{event.object_id}",
                "reason": event.reason,
                "safety": event.action in SAFETY_ACTIONS,
            }
        )
    return rows


def _drawdown(cumulative: list[Decimal]) -> tuple[Decimal, int | None]:
    """Largest fall of the cumulative P&L from a previous peak (a peak of zero before day one)."""
    peak, worst, worst_day = Decimal(0), Decimal(0), None
    for index, value in enumerate(cumulative):
        peak = max(peak, value)
        if peak - value > worst:
            worst, worst_day = peak - value, index
    return worst, worst_day


def _monitoring(deployments: list[Deployment], assessment: dict[str, Any]) -> dict[str, Any]:
    ids = [d.pk for d in deployments]
    samples = MonitoringSample.objects.filter(deployment_id__in=ids)
    count = samples.count()
    alerts = [
        _alert(alert) for alert in MonitoringAlert.objects.filter(deployment_id__in=ids).order_by("raised_at", "pk")
    ]
    if count == 0:
        return {
            "sample_count": 0,
            "statement": "No monitoring samples were received for this version's deployments.",
            "alerts": alerts,
            "days": [],
        }
    # Per UTC day, in the database: a deployment may hold hundreds of thousands of samples.
    decided_q = Q(predicted__isnull=False, outcome__isnull=False)
    rows = (
        samples.annotate(day=TruncDate("at", tzinfo=dt.UTC))
        .values("day")
        .annotate(
            pnl=Sum("pnl"),
            n=Count("pk", filter=decided_q),
            right=Count("pk", filter=decided_q & Q(predicted=F("outcome"))),
            trades=Sum("trade_count"),
        )
        .order_by("day")
    )
    extent = samples.aggregate(first=Min("at"), last=Max("at"))
    first, last = extent["first"], extent["last"]
    days, cumulative, running = [], [], Decimal(0)
    decided = right = trades = 0
    for item in rows:
        running += item["pnl"] or Decimal(0)
        cumulative.append(running)
        decided += item["n"]
        right += item["right"]
        trades += item["trades"] or 0
        days.append(
            {
                "date": item["day"].isoformat(),
                "pnl": str((item["pnl"] or Decimal(0)).quantize(Decimal("0.01"))),
                "cumulative_pnl": str(running.quantize(Decimal("0.01"))),
                "predictions": item["n"],
                "accuracy": round(item["right"] / item["n"], 4) if item["n"] else None,
                "trades": item["trades"] or 0,
            }
        )
    worst, worst_index = _drawdown(cumulative)
    worst_day = min(days, key=lambda d: Decimal(d["pnl"]))
    baseline, source = None, "none"
    for deployment in deployments:
        value = (deployment.monitoring_parameters.get("accuracy") or {}).get("baseline")
        if value is not None:
            baseline, source = value, f"deployment {deployment.pk}'s monitoring parameters"
            break
    if baseline is None and assessment.get("accuracy") is not None:
        baseline, source = assessment["accuracy"], f"risk assessment {assessment['id']} (validation accuracy)"
    accuracy = round(right / decided, 4) if decided else None
    return {
        "sample_count": count,
        "first_at": iso(first),
        "last_at": iso(last),
        "predictions": decided,
        "correct": right,
        "accuracy": accuracy,
        "baseline_accuracy": baseline,
        "baseline_source": source,
        "accuracy_vs_baseline": round(accuracy - baseline, 4)
        if accuracy is not None and baseline is not None
        else None,
        "trades": trades,
        "total_pnl": str(running.quantize(Decimal("0.01"))),
        "currency": deployments[0].currency,
        "max_drawdown": str(worst.quantize(Decimal("0.01"))),
        "max_drawdown_day": days[worst_index]["date"] if worst_index is not None else None,
        "worst_day": worst_day["date"],
        "worst_day_pnl": worst_day["pnl"],
        "days": days,
        "alerts": alerts,
    }


def _alert(alert: MonitoringAlert) -> dict[str, Any]:
    to_resolve = None
    if alert.resolved_at is not None:
        to_resolve = str(alert.resolved_at - alert.raised_at).split(".")[0]
    return {
        "id": alert.pk,
        "rule_id": alert.rule_id,
        "severity": alert.severity,
        "status": alert.status,
        "raised_at": iso(alert.raised_at),
        "message": alert.message,
        "actions": alert.actions,
        "action_results": [
            {"action": item.get("action"), "status": item.get("status"), "detail": item.get("detail", "")}
            for item in alert.action_results
        ],
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
        "acknowledged_at": iso(alert.acknowledged_at),
        "resolved_by": alert.resolved_by.get_username() if alert.resolved_by_id else None,
        "resolved_at": iso(alert.resolved_at),
        "resolution": alert.resolution,
        "time_to_resolution": to_resolve,
    }


def build(ctx: BuildContext) -> dict[str, Any]:
    version = ModelVersion.objects.select_related(
        "model", "model__owner", "model__desk", "training_dataset", "validation_dataset", "test_dataset", "created_by"
    ).get(pk=ctx.report.version_id)
    model = version.model
    up_to = ctx.checkpoint.tree_size
    requests = list(
        SignOffRequest.objects.filter(version=version)
        .select_related("requested_by", "latest_decision", "latest_decision__policy_set")
        .order_by("submitted_at", "pk")
    )
    deploy_requests = [r for r in requests if r.to_status == "deployed"]
    deployments = list(
        Deployment.objects.filter(version=version).select_related("version", "rollback_target").order_by("started_at")
    )
    # A rollback opens a deployment of the target at the moment the rolled-back one ends: that
    # start is part of this version's record (the return to the previous version).
    restored = [
        found
        for d in deployments
        if d.status == Deployment.Status.ROLLED_BACK and d.rollback_target_id and d.ended_at
        for found in Deployment.objects.filter(
            model=model, version_id=d.rollback_target_id, started_at=d.ended_at
        ).select_related("version", "rollback_target")
    ]
    target = deployments[0].rollback_target if deployments else None
    if target is None and deploy_requests:
        proposal_target = (deploy_requests[0].deployment or {}).get("rollback_target") or {}
        if isinstance(proposal_target, dict) and proposal_target.get("version_id"):
            target = ModelVersion.objects.filter(pk=proposal_target["version_id"]).first()
    previous = _previous_version(version, target)
    current = _version_facts(version)
    previous_facts = _version_facts(previous) if previous else None
    changes = _changes(current, previous_facts)
    ctx.progress(40, "test evidence and sign-offs")
    assessment = _assessment(version)
    validation = (
        Event.objects.filter(
            object_type="models_registry.modelversion",
            object_id=str(version.pk),
            action="model_version.validate",
            seq__lte=up_to,
        )
        .order_by("-seq")
        .first()
    )
    ctx.progress(60, "deployments, safety actions and monitoring")
    events = _events([d.pk for d in deployments] + [d.pk for d in restored], version, up_to)
    monitoring = (
        _monitoring(deployments, assessment)
        if deployments
        else {
            "sample_count": 0,
            "statement": "This version was never deployed: there are no results after deployment.",
            "alerts": [],
            "days": [],
        }
    )
    return {
        "model": {
            "id": model.pk,
            "name": model.name,
            "purpose": model.purpose,
            "model_type": model.model_type,
            "owner": model.owner.get_username(),
            "desk": model.desk.name,
            "materiality": _dec(model.materiality),
            "risk_tier": model.risk_tier,
            "risk_tier_override": model.risk_tier_override,
            "risk_tier_override_justification": model.risk_tier_override_justification,
        },
        "version": current,
        "previous": previous_facts,
        "previous_basis": (
            "the rollback target named by the deployment"
            if previous is not None and previous == target
            else "the model's version registered before this one"
            if previous is not None
            else None
        ),
        "changes": changes,
        "assessment": assessment,
        "validation": (
            {"seq": validation.seq, "timestamp": iso(validation.timestamp), "actor": validation.actor_label}
            if validation
            else None
        ),
        "signoffs": [_signoff(r) for r in requests],
        "phase_plan": _phase_plan(deploy_requests),
        "deployments": [_deployment_row(d) for d in deployments + restored],
        "events": events,
        "safety_events": [e for e in events if e["safety"]],
        "monitoring": monitoring,
        "sections": [
            {"id": "change", "title": "The change and its materiality"},
            {"id": "evidence", "title": "Test evidence"},
            {"id": "approval", "title": "Approvals by the designated approvers"},
            {"id": "plan", "title": "Phase plan and limits set before deployment"},
            {"id": "safety", "title": "Kill switch and rollback events"},
            {"id": "results", "title": "Results after deployment"},
        ],
    }
