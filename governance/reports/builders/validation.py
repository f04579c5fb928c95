"""Model validation report for one version (report type ``validation``).

SR 11-7 / OCC 2011-12, replaced in April 2026 by SR 26-2 / OCC Bulletin 2026-13 (validation:
conceptual soundness, outcomes analysis, ongoing monitoring; effective challenge), PRA SS1/23
Principle 4 (independent validation). Every figure is read here from the records: the version
and its model, the latest succeeded full risk assessment (its stored ``results``, ``metrics``,
``overfitting`` and ``explainability``), the datasets, the validator assignments, the sign-offs
and their audit events, the policy decisions, the findings, the post-model adjustments (the
register, with their status as at generation), the deployments and the anomaly
rules of the policy set in force. Nothing is recomputed from the artifact: the ROC points and
the equity curve are stored by the assessment pipeline (``checks.metrics.roc_curve``,
``assessment.downsample_curve``); an assessment stored before the ROC points were says so.

Events are read up to the checkpoint the report is bound to, so the audit seqs printed are in
the signed tree.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import numpy as np

from audit.models import Event
from governance.models import (
    Deployment,
    Finding,
    MonitoringAlert,
    PolicyDecision,
    SignOffRequest,
    SignOffResponse,
)
from governance.reports.context import BuildContext
from governance.reports.envelope import iso
from models_registry.models import (
    AssessmentKind,
    AssessmentStatus,
    Dataset,
    ModelGrant,
    ModelVersion,
    PostModelAdjustment,
    RiskAssessment,
)

SECTIONS = (
    ("conclusion", "Conclusion and rating"),
    ("description", "Description, intended use and limitations"),
    ("scope", "Scope and independence"),
    ("soundness", "Conceptual soundness"),
    ("implementation", "Implementation check"),
    ("outcomes", "Outcomes analysis"),
    ("overfitting", "Overfitting tests"),
    ("data", "Data quality and lineage"),
    ("monitoring", "Monitoring plan"),
    ("findings", "Findings"),
    ("restrictions", "Post-model adjustments and restrictions"),
    ("policy", "Policy decisions"),
    ("signoffs", "Sign-offs"),
)
# Statuses a version reaches only after a validator recorded the validation outcome.
_VALIDATED = frozenset({"validated", "approved", "deployed", "suspended", "retired"})
# Anomaly rules read input.monitoring.detections.<name>; parameters.yaml names most sections alike.
_PARAMETER_SECTION = {"accuracy_drop": "accuracy", "feature_drift": "drift"}
_OPEN_FINDINGS = ("open", "in_progress")


def _label(user: Any) -> str | None:
    return None if user is None else user.get_username()


def _events(ctx: BuildContext, object_type: str, object_ids: list[Any]) -> list[Event]:
    return list(
        Event.objects.filter(
            object_type=object_type,
            object_id__in=[str(pk) for pk in object_ids],
            seq__lte=ctx.checkpoint.tree_size,
        ).order_by("seq")
    )


def _adjustments(version: ModelVersion, at: Any) -> list[dict[str, Any]]:
    """The version's post-model adjustments (the register, every status), status as at ``at``."""
    return [
        {
            "id": a.pk,
            "adjustment": a.adjustment,
            "description": a.description,
            "reason": a.reason,
            "approved_by": a.approved_by.get_username(),
            "effective_from": iso(a.effective_from),
            "effective_until": iso(a.effective_until),
            "status": a.status,
            "withdrawn_at": iso(a.withdrawn_at),
            "withdrawal_reason": a.withdrawal_reason or None,
        }
        for a in PostModelAdjustment.objects.filter(version=version)
        .select_related("approved_by")
        .with_status(at)
        .order_by("effective_from", "pk")
    ]


def _latest_full_assessment(version: ModelVersion) -> RiskAssessment | None:
    return (
        RiskAssessment.objects.filter(version=version, kind=AssessmentKind.FULL, status=AssessmentStatus.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .first()
    )


def _lifecycle(ctx: BuildContext, version: ModelVersion) -> list[dict[str, Any]]:
    return [
        {
            "seq": e.seq,
            "at": iso(e.timestamp),
            "actor": e.actor_label,
            "action": e.action,
            "status": (e.after or {}).get("status"),
            "reason": e.reason,
        }
        for e in _events(ctx, ModelVersion._meta.label_lower, [version.pk])
        if e.action.startswith("model_version.")
    ]


def _signoffs(ctx: BuildContext, version: ModelVersion) -> list[dict[str, Any]]:
    requests = list(SignOffRequest.objects.filter(version=version).order_by("submitted_at", "pk"))
    responses = list(
        SignOffResponse.objects.filter(request__in=requests).select_related("approver").order_by("decided_at", "pk")
    )
    seqs: dict[str, int] = {}
    for event in _events(ctx, SignOffResponse._meta.label_lower, [r.pk for r in responses]):
        seqs.setdefault(event.object_id, event.seq)
    submitted: dict[str, int] = {}
    for event in _events(ctx, SignOffRequest._meta.label_lower, [r.pk for r in requests]):
        if event.action == "signoff.submitted":
            submitted.setdefault(event.object_id, event.seq)
    out = []
    for request in requests:
        out.append(
            {
                "id": request.pk,
                "transition": f"{request.from_status} -> {request.to_status}",
                "status": request.status,
                "round": request.round,
                "requested_by": _label(request.requested_by),
                "submitted_at": iso(request.submitted_at),
                "submitted_seq": submitted.get(str(request.pk)),
                "closed_at": iso(request.closed_at),
                "justification": request.justification,
                "evidence": request.evidence,
                "required_approvals": request.required_approvals,
                "responses": [
                    {
                        "approver": r.approver_label,
                        "roles": r.roles,
                        "verdict": r.verdict,
                        "comment": r.comment,
                        "decided_at": iso(r.decided_at),
                        "round": r.round,
                        "audit_seq": seqs.get(str(r.pk)),
                    }
                    for r in responses
                    if r.request_id == request.pk
                ],
            }
        )
    return out


def _rating(assessment: RiskAssessment | None) -> dict[str, Any]:
    if assessment is None:
        return {
            "rating": None,
            "rules": [],
            "statement": "No succeeded full risk assessment of this version: no rating.",
        }
    rules = assessment.rating_rules or []
    return {
        "rating": assessment.rating,
        "assessment_id": assessment.pk,
        "finished_at": iso(assessment.finished_at),
        "decision_id": assessment.rating_decision_id,
        "rules": [
            {"id": r.get("id"), "outcome": r.get("outcome"), "message": r.get("message", "")}
            for r in rules
            if r.get("outcome") not in (None, "pass")
        ],
        "statement": (
            f"Risk assessment #{assessment.pk} rated {assessment.rating} by the policies in force."
            if assessment.rating
            else "The assessment was not rated: " + "; ".join(r.get("message", "") for r in rules)
        ),
    }


def _conclusion(
    version: ModelVersion,
    lifecycle: list[dict[str, Any]],
    signoffs: list[dict[str, Any]],
    rating: dict[str, Any],
    findings: list[dict[str, Any]],
) -> dict[str, Any]:
    """Approve / approve with conditions / reject, and the steps that led to it, in order."""
    steps: list[str] = []
    decisive = [e for e in lifecycle if e["action"] in ("model_version.validate", "model_version.reject")]
    last = decisive[-1] if decisive else None
    rejected_signoff = next((s for s in reversed(signoffs) if s["status"] == "rejected"), None)
    approved_signoff = next((s for s in reversed(signoffs) if s["status"] == "approved"), None)
    if last is not None:
        steps.append(
            f"Lifecycle: '{last['action'].removeprefix('model_version.')}' by {last['actor']} at {last['at']} "
            f"(audit seq {last['seq']})."
        )
    else:
        steps.append("Lifecycle: no validation outcome (validate or reject) is recorded for this version.")
    if approved_signoff:
        steps.append(f"Sign-off request #{approved_signoff['id']} ({approved_signoff['transition']}) approved.")
    if rejected_signoff:
        steps.append(f"Sign-off request #{rejected_signoff['id']} ({rejected_signoff['transition']}) rejected.")
    steps.append(
        f"Latest full risk assessment: rating {rating['rating']}."
        if rating["rating"]
        else "No rated full risk assessment."
    )
    if version.status in ("suspended", "retired"):
        steps.append(
            f"The version is now {version.status} (since {iso(version.status_changed_at)}): the conclusion is the "
            "validation's; see the monitoring alerts."
        )
    open_findings = [f for f in findings if f["status"] in _OPEN_FINDINGS]
    steps.append(f"Open findings: {len(open_findings)}.")

    conditions: list[str] = []
    rejected = version.status == "rejected" or (last is not None and last["action"] == "model_version.reject")
    rejected = rejected or (rejected_signoff is not None and approved_signoff is None)
    if rejected:
        outcome = "reject"
    elif version.status in _VALIDATED and last is not None:
        if rating["rating"] is None:
            conditions.append("no rated full risk assessment of this version")
        elif rating["rating"] != "green":
            rules = "; ".join(r["id"] for r in rating["rules"])
            conditions.append(
                f"the latest full risk assessment is rated {rating['rating']}" + (f": {rules}" if rules else "")
            )
        conditions += [f"remediate finding #{f['id']} ({f['severity']}) by {f['due_date']}" for f in open_findings]
        outcome = "approve with conditions" if conditions else "approve"
    else:
        outcome = None
    rule = (
        "reject if the version was rejected (status, the validator's reject, or a rejected sign-off not followed by "
        "an approved one); otherwise approve if a validator validated it, its latest full risk assessment is rated "
        "green and no finding is open; approve with conditions if validated but the rating is not green or findings "
        "are open (each one a condition); no conclusion while no validation outcome is recorded"
    )
    return {
        "outcome": outcome,
        "statement": (
            f"Conclusion: {outcome.upper()}."
            if outcome
            else f"No conclusion: the version is {version.status} and no validation outcome is recorded yet."
        ),
        "status": version.status,
        "derivation": steps,
        "rule": rule,
        "conditions": conditions,
    }


def _dataset(dataset: Dataset | None, role: str) -> dict[str, Any]:
    if dataset is None:
        return {"role": role, "name": None}
    result = dataset.validation_result or {}
    return {
        "role": role,
        "id": dataset.pk,
        "name": dataset.name,
        "sha256": dataset.content_sha256,
        "rows": dataset.row_count,
        "time_start": iso(dataset.time_start),
        "time_end": iso(dataset.time_end),
        "source_kind": dataset.source_kind,
        "classification": dataset.classification,
        "storage_location": dataset.storage_location,
        "validation_status": dataset.validation_status,
        "validated_at": iso(dataset.validated_at),
        "failed_checks": [c.get("message", "") for c in result.get("checks", []) if not c.get("passed", True)],
    }


def _num(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _backtest_row(name: str, values: dict[str, Any]) -> dict[str, Any]:
    keys = ("total_return", "annualised_return", "sharpe_ratio", "sortino_ratio", "max_drawdown", "calmar_ratio")
    return {"name": name, **{k: _num(values.get(k)) for k in keys}}


def _drawdowns(curve: dict[str, Any]) -> dict[str, list[float]]:
    """Drawdown (1 - equity / running peak) along the stored, possibly thinned, equity curve: for
    the chart only; the maximum drawdown reported is the backtest's, over every period."""
    out = {}
    for name in ("strategy", "benchmark"):
        equity = np.asarray(curve.get(name) or [], dtype=float)
        out[name] = (1.0 - equity / np.maximum.accumulate(equity)).round(6).tolist() if equity.size else []
    return out


def _outcomes(results: dict[str, Any]) -> dict[str, Any]:
    performance = results.get("performance")
    backtest = results.get("backtest")
    robustness = results.get("robustness")
    out: dict[str, Any] = {"performance": None, "backtest": None, "robustness": None}
    if performance:
        out["performance"] = {
            key: performance.get(key)
            for key in (
                "n",
                "accuracy",
                "precision",
                "recall",
                "f1",
                "roc_auc",
                "brier_score",
                "rmse",
                "mae",
                "r2",
                "directional_accuracy",
                "confusion_matrix",
                "dataset",
                "positive_label",
                "undefined",
            )
            if key in performance
        }
        matrix = performance.get("confusion_matrix")
        if matrix:
            out["performance"]["confusion_matrix"] = {
                "labels": matrix["labels"],
                "rows": [
                    {"label": label, "counts": counts}
                    for label, counts in zip(matrix["labels"], matrix["matrix"], strict=True)
                ],
            }
        roc = performance.get("roc_curve")
        out["roc_curve"] = roc
        out["roc_statement"] = (
            None
            if roc
            else (performance.get("undefined") or {}).get(
                "roc_curve", "the ROC points were not stored by this assessment (run before they were)"
            )
        )
    if backtest:
        metrics, benchmark = backtest.get("metrics", {}), backtest.get("benchmark", {})
        curve = backtest.get("equity_curve") or {}
        out["backtest"] = {
            "rows": [_backtest_row("Strategy", metrics), _backtest_row("Buy and hold", benchmark)],
            "excess_total_return": _num(metrics.get("excess_total_return")),
            "n_periods": metrics.get("n_periods"),
            "n_trades": metrics.get("n_trades"),
            "hit_rate": _num(metrics.get("hit_rate")),
            "max_drawdown_peak": metrics.get("max_drawdown_peak"),
            "max_drawdown_trough": metrics.get("max_drawdown_trough"),
            "max_drawdown_recovery": metrics.get("max_drawdown_recovery"),
            "signal": backtest.get("signal"),
            "parameters": backtest.get("parameters"),
            "equity_curve": {k: curve.get(k) for k in ("dates", "strategy", "benchmark")} if curve else None,
            "drawdown": _drawdowns(curve) if curve else None,
            "curve_downsampled_from": curve.get("downsampled_from"),
        }
    if robustness:
        regimes = robustness.get("volatility_regimes") or {}
        out["robustness"] = {
            "window": regimes.get("window"),
            "edges": regimes.get("edges"),
            "regimes": [
                {
                    "regime": name,
                    "n_periods": item.get("n_periods"),
                    "strategy": _backtest_row("Strategy", item.get("strategy") or {}),
                    "benchmark": _backtest_row("Buy and hold", item.get("benchmark") or {}),
                }
                for name, item in (regimes.get("regimes") or {}).items()
            ],
            "stress_windows": [
                {
                    "name": name,
                    "description": item.get("description"),
                    "start": item.get("start"),
                    "end": item.get("end"),
                    "covered": bool(item.get("covered")),
                    "reason": item.get("reason"),
                    "strategy": _backtest_row("Strategy", item.get("strategy") or {}) if item.get("covered") else None,
                    "benchmark": _backtest_row("Buy and hold", item.get("benchmark") or {})
                    if item.get("covered")
                    else None,
                }
                for name, item in (robustness.get("stress_windows") or {}).items()
            ],
        }
    return out


def _overfitting(assessment: RiskAssessment) -> dict[str, Any] | None:
    stored = (assessment.results or {}).get("overfitting")
    if not stored:
        return None
    cv, pbo, dsr, gap = (stored.get(k) or {} for k in ("cross_validation", "pbo", "deflated_sharpe", "train_test_gap"))
    summary = assessment.overfitting or {}
    details = summary.get("details") or {}
    return {
        "passed": summary.get("passed"),
        "method": summary.get("method"),
        "train_test_gap": {k: gap.get(k) for k in ("metric", "train", "test", "gap", "threshold", "exceeds")},
        "cross_validation": {k: cv.get(k) for k in ("scoring", "n_splits", "embargo", "scores", "mean", "std")},
        "pbo": {
            "pbo": pbo.get("pbo"),
            "threshold": details.get("pbo_threshold"),
            "n_configurations": pbo.get("n_configurations"),
            "n_partitions": pbo.get("n_partitions"),
            "n_combinations": pbo.get("n_combinations"),
            "probability_oos_loss": pbo.get("probability_oos_loss"),
            "degradation_slope": pbo.get("degradation_slope"),
            "grid": pbo.get("grid"),
            "configurations": pbo.get("configurations"),
        },
        "deflated_sharpe": {
            k: dsr.get(k)
            for k in (
                "deflated_sharpe_ratio",
                "probabilistic_sharpe_ratio",
                "observed_sharpe",
                "expected_max_sharpe",
                "n_trials",
                "n_obs",
                "undefined",
            )
            if k in dsr
        },
    }


def _null_meaning(name: str, metrics: dict[str, Any], live: Deployment | None) -> str:
    """What a null parameter stands for, as ``anomaly_services`` resolves it for this version."""
    if name == "accuracy.baseline":
        accuracy = metrics.get("accuracy")
        return (
            f"the latest full risk assessment's accuracy, {accuracy:.4f}"
            if isinstance(accuracy, int | float)
            else "no full risk assessment accuracy: the rule is not computed until a baseline is set"
        )
    if name == "losing_trades.baseline_loss_rate":
        hit_rate = metrics.get("hit_rate")
        return (
            f"1 - the latest full risk assessment's hit rate, {1 - hit_rate:.4f}"
            if isinstance(hit_rate, int | float) and 0 < hit_rate < 1
            else "default_loss_rate (no full risk assessment hit rate)"
        )
    if name == "daily_loss.max_daily_loss":
        if live is None:
            return "the deployment's own maximum daily loss"
        if live.max_daily_loss is None:
            return "the deployment has no maximum daily loss: the rule is not computed"
        return f"the deployment's own maximum daily loss, {live.max_daily_loss:,} {live.currency}"
    return ""


def _monitoring(
    version: ModelVersion, deployments: list[Deployment], assessment: RiskAssessment | None
) -> dict[str, Any]:
    from governance.anomaly_services import effective_parameters
    from governance.policy.store import active_policy_set

    active = active_policy_set()
    if active is None:
        return {"policy_set": None, "rules": [], "statement": "No policy set is in force: no anomaly rule applies."}
    row, compiled = active
    metrics = (assessment.metrics or {}) if assessment is not None else {}
    live = next((d for d in deployments if d.status == "active"), None)
    parameters = (
        effective_parameters(compiled, live) if live is not None else compiled.parameters.get("monitoring") or {}
    )
    rules = []
    for rule in compiled.rules:
        if "monitoring" not in rule.spec.applies_to:
            continue
        detection = next(
            (name for name in _detections(rule.spec.precondition or "") if name),
            None,
        )
        section = _PARAMETER_SECTION.get(detection or "", detection or "")
        rules.append(
            {
                "id": rule.id,
                "title": rule.spec.title,
                "effect": rule.spec.effect,
                "actions": list(rule.spec.actions or []),
                # JSON text (null, {"pilot": 0.05}) as the policy files write it, not Python's repr.
                "parameters": [
                    {
                        "name": f"{section}.{name}",
                        "value": json.dumps(value, sort_keys=True),
                        "meaning": _null_meaning(f"{section}.{name}", metrics, live) if value is None else "",
                    }
                    for name, value in (parameters.get(section) or {}).items()
                ],
                "parameter_section": section or None,
                "references": list(rule.spec.references),
            }
        )
    overrides = [
        {
            "deployment_id": d.pk,
            "phase": d.phase,
            "status": d.status,
            "overrides": [
                {"name": f"{section}.{name}", "value": json.dumps(value, sort_keys=True)}
                for section, items in d.monitoring_parameters.items()
                for name, value in items.items()
            ],
        }
        for d in deployments
        if d.monitoring_parameters
    ]
    return {
        "policy_set": row.content_hash,
        "policy_set_activated_at": iso(row.activated_at),
        "rules": rules,
        "overrides": overrides,
        "live_deployment": live.pk if live is not None else None,
        "statement": (
            f"Parameters in force for live deployment #{live.pk} (the policy set's, with its overrides)."
            if live is not None
            else "The version has no live deployment: the policy set's parameters are shown; a deployment may "
            "override them."
        ),
    }


def _detections(precondition: str) -> list[str]:
    marker = "detections."
    names = []
    for part in precondition.split(marker)[1:]:
        names.append("".join(c for c in part.split(".")[0] if c.isalnum() or c == "_"))
    return names


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _routine(decision: PolicyDecision) -> bool:
    return decision.trigger == "monitoring" and all(
        r.get("outcome") in ("pass", "not_applicable") for r in decision.results
    )


def _decision(decision: PolicyDecision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "trigger": decision.trigger,
        "outcome": decision.outcome,
        "decided_at": iso(decision.decided_at),
        "actor": decision.actor_label,
        "policy_set": decision.policy_set_hash[:12],
        "rules": [
            {
                "id": r.get("id"),
                "outcome": r.get("outcome"),
                "message": r.get("message", ""),
                "references": r.get("references", []),
            }
            for r in decision.results
            if r.get("outcome") != "not_applicable"
        ],
        # Listed by id only: they did not apply to this decision's input.
        "not_applicable": [r.get("id") for r in decision.results if r.get("outcome") == "not_applicable"],
    }


def build(ctx: BuildContext) -> dict[str, Any]:
    version = ModelVersion.objects.select_related(
        "model", "model__owner", "model__desk", "created_by", "training_dataset", "validation_dataset", "test_dataset"
    ).get(pk=ctx.report.version_id)
    model = version.model
    ctx.progress(35, "reading the version's records")
    assessment = _latest_full_assessment(version)
    lifecycle = _lifecycle(ctx, version)
    signoffs = _signoffs(ctx, version)
    findings = [
        {
            "id": f.pk,
            "title": f.title,
            "description": f.description,
            "severity": f.severity,
            "status": f.status,
            "owner": _label(f.remediation_owner),
            "due_date": f.due_date.isoformat(),
            "raised_by": f.raised_by_label or _label(f.raised_by),
            "raised_at": iso(f.raised_at),
            "assessment_id": f.assessment_id,
            "resolution": f.resolution,
        }
        for f in Finding.objects.filter(version=version).select_related("remediation_owner", "raised_by").order_by("pk")
    ]
    rating = _rating(assessment)
    decisions = list(PolicyDecision.objects.filter(version=version).order_by("decided_at", "pk"))
    deployments = list(Deployment.objects.filter(version=version).select_related("rollback_target").order_by("pk"))

    grants = list(
        ModelGrant.objects.filter(content_object=model, permission__codename="validate_model").select_related("user")
    )
    assignment_events = [
        e
        for e in Event.objects.filter(
            action="access.granted", object_type=ModelGrant._meta.label_lower, seq__lte=ctx.checkpoint.tree_size
        ).order_by("seq")
        if (e.after or {}).get("permission") == "validate_model"
        and (e.after or {}).get("object_type") == model._meta.label_lower
        and (e.after or {}).get("object_id") == model.pk
    ]
    validators_recorded = {
        e["actor"] for e in lifecycle if e["action"] in ("model_version.validate", "model_version.reject")
    }
    developers = {_label(model.owner), _label(version.created_by)}
    developers |= {
        e["actor"] for e in lifecycle if e["action"] in ("model_version.created", "model_version.submit_for_validation")
    }
    independent = bool(validators_recorded) and not (validators_recorded & developers)

    results = (assessment.results or {}) if assessment else {}
    explainability = (assessment.explainability or {}) if assessment else {}
    datasets = [
        _dataset(version.training_dataset, "training"),
        _dataset(version.validation_dataset, "validation"),
        _dataset(version.test_dataset, "test"),
    ]
    ctx.progress(45, "laying out the assessment's results")
    data_quality = [
        {
            "role": role,
            "dataset": item.get("dataset"),
            "passed": item.get("passed"),
            "rows": item.get("rows"),
            "duplicates": (item.get("duplicates") or {}).get("rows"),
            "failed_rules": [
                c.get("message") for c in (item.get("declared_rules") or {}).get("checks", []) if not c.get("passed")
            ],
        }
        for role, item in (results.get("data_quality") or {}).items()
    ]
    drift = results.get("drift")
    constraints_text = model.constraints.strip()
    return {
        "sections": [{"id": key, "title": title} for key, title in SECTIONS],
        "version": {
            "id": version.pk,
            "model": model.name,
            "model_id": model.pk,
            "version": version.version,
            "status": version.status,
            "status_changed_at": iso(version.status_changed_at),
            "created_by": _label(version.created_by),
            "created_at": iso(version.created_at),
        },
        "conclusion": _conclusion(version, lifecycle, signoffs, rating, findings),
        "rating": rating,
        "description": {
            "description": model.description,
            "purpose": model.purpose,
            "desk": model.desk.name,
            "owner": _label(model.owner),
            "objectives": model.objectives,
            "success_criteria": model.success_criteria,
            "limitations": constraints_text,
            "risk_tier": model.risk_tier_override or model.risk_tier,
            "risk_tier_override_justification": model.risk_tier_override_justification,
            "materiality": _decimal(model.materiality),
        },
        "scope": {
            "validators_assigned": [
                {
                    "validator": _label(g.user),
                    "seq": next(
                        (e.seq for e in assignment_events if (e.after or {}).get("username") == _label(g.user)), None
                    ),
                }
                for g in grants
            ],
            "assignment_events": [
                {
                    "seq": e.seq,
                    "at": iso(e.timestamp),
                    "by": e.actor_label,
                    "validator": (e.after or {}).get("username"),
                    "reason": e.reason,
                }
                for e in assignment_events
            ],
            "validation_recorded_by": sorted(validators_recorded),
            "developers": sorted(d for d in developers if d),
            "independent": independent if validators_recorded else None,
            "lifecycle": lifecycle,
            "assessment_scope": (
                f"Full risk assessment #{assessment.pk} (performance, backtest, robustness, overfitting, data quality, "
                "explainability) on the version's registered datasets."
                if assessment
                else None
            ),
        },
        "soundness": {
            "method": model.model_type,
            "estimator": version.estimator_class,
            "framework": version.framework,
            "hyperparameters": version.hyperparameters,
            "feature_pipeline": version.feature_pipeline,
            "features": version.feature_names,
            "target": version.target,
            "assumptions": model.success_criteria,
            "alternatives": (((results.get("overfitting") or {}).get("pbo") or {}).get("configurations")),
            "alternatives_grid": (((results.get("overfitting") or {}).get("pbo") or {}).get("grid")),
            "complexity": (explainability.get("details") or {}).get("required"),
            "explainability": {
                "summary": explainability.get("summary"),
                "scoring": (explainability.get("details") or {}).get("scoring"),
                "baseline_score": (explainability.get("details") or {}).get("baseline_score"),
                "n_rows": (explainability.get("details") or {}).get("n_rows"),
                "features": (explainability.get("details") or {}).get("features") or [],
            }
            if explainability
            else None,
        },
        "implementation": {
            "artifact_sha256": version.artifact_sha256,
            "artifact_size": version.artifact_size,
            "artifact_format": version.artifact_format,
            "code_repository": version.code_repository,
            "code_commit": version.code_commit,
            "datasets": [{"role": d["role"], "name": d["name"], "sha256": d.get("sha256")} for d in datasets],
            "assessment": {
                "id": assessment.pk,
                "inputs_key": assessment.inputs_key,
                "inputs": assessment.inputs,
                "environment": assessment.environment,
                "random_seed": assessment.random_seed,
                "parameters": assessment.parameters,
                "finished_at": iso(assessment.finished_at),
                "artifact_matches": (assessment.inputs or {}).get("artifact_sha256") == version.artifact_sha256,
            }
            if assessment
            else None,
        },
        "outcomes": _outcomes(results) if assessment else None,
        "overfitting": _overfitting(assessment) if assessment else None,
        "data": {
            "datasets": datasets,
            "quality": data_quality,
            "drift": {
                "method": drift.get("method"),
                "features": [
                    {k: f.get(k) for k in ("feature", "psi", "psi_level", "ks_statistic", "ks_pvalue", "drifted")}
                    for f in drift.get("features", [])
                ],
                "drifted": drift.get("drifted_features", []),
            }
            if drift
            else None,
        },
        "monitoring": _monitoring(version, deployments, assessment),
        "findings": findings,
        "restrictions": {
            "constraints": constraints_text,
            "restrictions_on_use": model.restrictions_on_use.strip() or None,
            "adjustments": _adjustments(version, ctx.generated_at),
            "deployments": [
                {
                    "id": d.pk,
                    "status": d.status,
                    "phase": d.phase,
                    "capital_limit": _decimal(d.capital_limit),
                    "currency": d.currency,
                    "max_daily_loss": _decimal(d.max_daily_loss),
                    "instruments": d.instruments,
                    "rollback_target": str(d.rollback_target) if d.rollback_target else None,
                    "kill_switch_engaged": d.kill_switch_engaged,
                    "kill_reason": d.kill_reason,
                    "started_at": iso(d.started_at),
                    "ended_at": iso(d.ended_at),
                }
                for d in deployments
            ],
        },
        "policy_decisions": [_decision(d) for d in decisions if not _routine(d)],
        # Monitoring evaluations in which every rule passed: one line each, not a table each.
        "routine_monitoring_decisions": [
            {
                "id": d.pk,
                "decided_at": iso(d.decided_at),
                "passed": sum(1 for r in d.results if r.get("outcome") == "pass"),
            }
            for d in decisions
            if _routine(d)
        ],
        "alerts": [
            {
                "id": a.pk,
                "rule_id": a.rule_id,
                "severity": a.severity,
                "status": a.status,
                "raised_at": iso(a.raised_at),
                "deployment_id": a.deployment_id,
                "actions": a.actions,
                "message": a.message,
                "resolution": a.resolution,
            }
            for a in MonitoringAlert.objects.filter(version=version).order_by("raised_at", "pk")
        ],
        "signoffs": signoffs,
    }


def chart_svgs(body: dict[str, Any]) -> dict[str, str]:
    """The report's charts, drawn from ``body`` only (called at render time by ``render.chart_svgs``)."""
    from governance.reports import charts

    out: dict[str, str] = {}
    outcomes = body.get("outcomes") or {}
    roc = outcomes.get("roc_curve")
    if roc:
        out["roc"] = charts.roc_curve(roc["fpr"], roc["tpr"], auc=(outcomes.get("performance") or {}).get("roc_auc"))
    backtest = outcomes.get("backtest") or {}
    curve = backtest.get("equity_curve")
    if curve and curve.get("dates"):
        out["equity"] = charts.dated_lines(
            curve["dates"],
            {"strategy": curve["strategy"], "buy and hold": curve["benchmark"]},
            ylabel="equity (start = 1)",
        )
        drawdown = backtest["drawdown"]
        out["drawdown"] = charts.dated_lines(
            curve["dates"],
            {"strategy": [-v for v in drawdown["strategy"]], "buy and hold": [-v for v in drawdown["benchmark"]]},
            ylabel="drawdown",
            percent=True,
            fill=True,
            height_cm=5,
        )
    explainability = (body.get("soundness") or {}).get("explainability") or {}
    features = explainability.get("features") or []
    if features:
        out["importance"] = charts.horizontal_bars(
            [f["feature"] for f in features],
            [round(f["importance_mean"], 4) for f in features],
            xlabel=f"mean drop in {explainability.get('scoring')} when the feature is permuted",
        )
    return out
